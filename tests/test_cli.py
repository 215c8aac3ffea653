"""`irflow restore` on images and folders: outputs, --overwrite, and error messages."""

import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest

from irflow_engine import Engine
from irflow_engine.cli import main
from irflow_engine.images import read_image, write_image


def _image(path, seed=0, size=(19, 23), alpha=False):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    a = rng.integers(0, 256, size=size, dtype=np.uint8) if alpha else None
    write_image(path, rgb, a)
    return rgb, a


def test_restore_one_image_matches_engine(tmp_path, tiny_checkpoint, capsys):
    rgb, _ = _image(tmp_path / "in.png")
    out = tmp_path / "out.png"
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(out), "--model", str(tiny_checkpoint),
                 "--steps", "2", "--device", "cpu"]) == 0
    got, _ = read_image(out)
    expected = Engine.from_checkpoint(tiny_checkpoint, steps=2).restore(rgb)
    np.testing.assert_array_equal(got, expected)
    assert "wrote" in capsys.readouterr().err


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_exif_orientation_is_applied_and_icc_profile_kept(tmp_path, tiny_checkpoint):
    """A phone JPEG stored sideways with EXIF orientation 6 is read upright (as viewers show it),
    and the input's RGB colour profile and its other EXIF tags are written into the output."""
    from PIL import Image

    rng = np.random.default_rng(3)
    stored = rng.integers(0, 256, size=(13, 21, 3), dtype=np.uint8)   # as the sensor wrote it
    exif = Image.Exif()
    exif[0x0112] = 6   # orientation: rotate 90° clockwise to display
    exif[0x010F], exif[0x0132] = "TestCam", "2026:11:27 10:00:00"   # Make, DateTime: written again
    profile = _srgb_profile()
    Image.fromarray(stored).save(tmp_path / "in.png", exif=exif, icc_profile=profile)

    upright, _ = read_image(tmp_path / "in.png")
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--model",
                 str(tiny_checkpoint), "--steps", "1", "--backend", "eager"]) == 0
    with Image.open(tmp_path / "o.png") as out:
        assert out.size == (13, 21) and out.info.get("icc_profile") == profile
        assert out.getexif().get(0x0112) in (None, 1), "the output must not be rotated a second time"
        assert out.getexif().get(0x010F) == "TestCam" and out.getexif().get(0x0132) == "2026:11:27 10:00:00"
    expected = Engine.from_checkpoint(tiny_checkpoint, steps=1).restore(upright)
    np.testing.assert_array_equal(read_image(tmp_path / "o.png")[0], expected)


XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:xmp="http://ns.adobe.com/'
       b'xap/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmp:Rating="4" tiff:Orientation="6"/></rdf:RDF>'
       b'</x:xmpmeta><?xpacket end="w"?>')


def test_xmp_and_dpi_are_kept_without_the_orientation(tmp_path, tiny_checkpoint):
    """A JPEG's XMP packet (a rating from a photo manager) and resolution are written again; the
    XMP's orientation, already applied to the pixels, is not (a viewer would turn it a second time)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    rgb = np.random.default_rng(4).integers(0, 256, size=(13, 21, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.jpg", exif=exif, xmp=XMP, dpi=(600, 600))   # a scan's resolution
    assert main(["restore", str(tmp_path / "in.jpg"), "-o", str(tmp_path / "o.jpg"), "--model",
                 str(tiny_checkpoint), "--steps", "1"]) == 0
    with Image.open(tmp_path / "o.jpg") as out:
        xmp = out.info.get("xmp", b"")
        assert out.size == (13, 21) and b'xmp:Rating="4"' in xmp and b"Orientation" not in xmp
        assert out.info.get("dpi") == (600, 600)


def test_png_text_chunks_are_kept(tmp_path, tiny_checkpoint):
    """A PNG's text chunks (an image generator's "parameters", a Unicode description, XMP) are
    written into the restored PNG; the XMP loses its orientation with the EXIF's."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    chunks = PngInfo()
    chunks.add_text("parameters", "a cat on a sofa, steps: 20")
    chunks.add_text("Description", "café ☕")
    chunks.add_text("XML:com.adobe.xmp", XMP.decode())
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb = np.random.default_rng(5).integers(0, 256, size=(13, 21, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png", pnginfo=chunks, exif=exif)
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--model",
                 str(tiny_checkpoint), "--steps", "1"]) == 0
    with Image.open(tmp_path / "o.png") as out:
        text = out.text
        assert out.size == (13, 21)
    assert text["parameters"] == "a cat on a sofa, steps: 20" and text["Description"] == "café ☕"
    assert 'xmp:Rating="4"' in text["XML:com.adobe.xmp"] and "Orientation" not in text["XML:com.adobe.xmp"]


def test_only_rgb_icc_profiles_are_carried():
    from irflow_engine.images import rgb_icc_profile

    rgb = _srgb_profile()
    assert rgb_icc_profile(rgb) == rgb
    grey = rgb[:16] + b"GRAY" + rgb[20:]     # a grey profile would mislabel RGB pixels
    assert rgb_icc_profile(grey) is None and rgb_icc_profile(b"") is None and rgb_icc_profile(None) is None
    assert rgb_icc_profile(rgb[:100]) is None   # shorter than an ICC header


def test_alpha_is_kept(tmp_path, tiny_checkpoint):
    _, alpha = _image(tmp_path / "in.png", alpha=True)
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"),
                 "--model", str(tiny_checkpoint), "--steps", "1"]) == 0
    _, got_alpha = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(got_alpha, alpha)


def test_avif_keeps_alpha_and_profile(tmp_path, tiny_checkpoint):
    """AVIF in and out (lossy, like JPEG and WebP, at quality 95): alpha and ICC profile kept."""
    from PIL import Image

    yy, xx = np.mgrid[0:21, 0:30]
    rgb = np.stack([xx * 8, yy * 12, np.full((21, 30), 120)], -1).astype(np.uint8)   # smooth: lossy-friendly
    alpha = np.full((21, 30), 255, np.uint8)
    alpha[:, :10] = 0
    profile = _srgb_profile()   # once: its header holds the time it was made
    write_image(tmp_path / "in.avif", rgb, alpha, icc_profile=profile)
    assert main(["restore", str(tmp_path / "in.avif"), "-o", str(tmp_path / "o.avif"), "--model",
                 str(tiny_checkpoint), "--steps", "1"]) == 0
    got, got_alpha = read_image(tmp_path / "o.avif")
    with Image.open(tmp_path / "o.avif") as im:
        assert im.format == "AVIF" and im.info.get("icc_profile") == profile
    assert np.abs(got_alpha.astype(int) - alpha).max() <= 2
    expected = Engine.from_checkpoint(tiny_checkpoint, steps=1).restore(read_image(tmp_path / "in.avif")[0])
    visible = alpha > 0
    # measured 1-2 levels (AVIF at quality 95); a wrong or unrestored image is tens of levels away
    assert np.abs(got.astype(int) - expected)[visible].mean() < 4


def test_restore_folder(tmp_path, tiny_checkpoint, capsys, caplog):
    src = tmp_path / "in"
    src.mkdir()
    _image(src / "a.png", 1)
    _image(src / "b.jpg", 2, size=(8, 5))
    _image(src / "c.tif", 3, size=(4, 9))
    (src / "readme.txt").write_text("not an image")
    (src / "clip.mp4").write_bytes(b"a video, not restored with the images")
    dst = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert main(["restore", str(src), "-o", str(dst), "--model", str(tiny_checkpoint), "--steps", "1"]) == 0
    assert "videos (clip.mp4) are not restored" in caplog.text and "restore-batch" in caplog.text
    assert sorted(p.name for p in dst.iterdir()) == ["a.png", "b.jpg", "c.tif"]
    assert read_image(dst / "c.tif")[0].shape == (4, 9, 3)
    assert "restored 3 images" in capsys.readouterr().err


def test_existing_output_needs_overwrite(tmp_path, tiny_checkpoint, capsys):
    _image(tmp_path / "in.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    args = ["restore", str(tmp_path / "in.png"), "-o", str(out), "--model", str(tiny_checkpoint), "--steps", "1"]
    assert main(args) == 1
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert main(args + ["--overwrite"]) == 0
    assert read_image(out)[0].shape == (19, 23, 3)


@pytest.mark.parametrize("case,match", [
    ("missing", "does not exist"),
    ("same", "the output is the input"),
    ("badmodel", "no such file, bundled model or preset"),
    ("corrupt", "cannot read image"),
    ("suffix", "no image suffix"),
    ("still-to-video", "is a still image, so its output is one too"),
    ("file-in-the-way", "a file is in the way of its folder"),
])
def test_errors(tmp_path, tiny_checkpoint, capsys, case, match):
    _image(tmp_path / "in.png")
    src, dst, model = tmp_path / "in.png", tmp_path / "out.png", str(tiny_checkpoint)
    if case == "missing":
        src = tmp_path / "nope.png"
    elif case == "same":
        dst = src
    elif case == "badmodel":
        model = "no-such-model"
    elif case == "corrupt":
        src = tmp_path / "bad.png"
        src.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    elif case == "suffix":
        dst = tmp_path / "out.xyz"
    elif case == "still-to-video":
        dst = tmp_path / "out.mp4"
    elif case == "file-in-the-way":   # an OSError: one line naming the output, not a traceback
        dst = src / "out.png"
    assert main(["restore", str(src), "-o", str(dst), "--model", model, "--steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "irflow: error:" in err and match in err
    assert not dst.exists() or case == "same"


@pytest.mark.parametrize("case", ["corrupt-image", "tile-overlap", "negative-overlap", "video-tile"])
def test_bad_input_fails_before_the_engine_loads(tmp_path, tiny_checkpoint, capsys, monkeypatch, case):
    """A corrupt image or impossible tile options are refused without paying the engine's start-up."""
    src, dst, extra = tmp_path / "in.png", tmp_path / "out.png", []
    _image(src)
    if case == "corrupt-image":
        src.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        match = "cannot read image"
    elif case == "tile-overlap":
        extra, match = ["--tile", "40"], "tile_overlap must be an integer in [0, tile/2) = [0, 20), got 32"
    elif case == "negative-overlap":
        extra, match = ["--tile-overlap", "-1"], "tile_overlap must be an integer >= 0"
    else:
        src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
        src.write_bytes(b"not looked at: the tile options fail first")
        extra, match = ["--tile", "16", "--tile-overlap", "8"], "got 8 for tile 16"
    built = []
    monkeypatch.setattr("irflow_engine.cli.build_engine", lambda args: built.append(args) or pytest.fail("built"))
    assert main(["restore", str(src), "-o", str(dst), "--model", str(tiny_checkpoint), *extra]) == 1
    err = capsys.readouterr().err
    assert "irflow: error:" in err and match in err and "Traceback" not in err
    assert not built and not dst.exists()


def test_an_unavailable_backend_is_one_line(tmp_path, tiny_checkpoint, capsys):
    _image(tmp_path / "in.png")
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model",
                 str(tiny_checkpoint), "--backend", "tensorrt", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "irflow: error: backend 'tensorrt' cannot run on cpu" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_folder_skips_an_unreadable_image_and_fails_at_the_end(tmp_path, tiny_checkpoint, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    good = {name: _image(src / name, seed=i)[0] for i, name in enumerate(("a.png", "c.png"))}
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")   # between the two, in name order
    assert main(["restore", str(src), "-o", str(dst), "--model", str(tiny_checkpoint), "--steps", "1",
                 "--backend", "eager"]) == 1
    err = capsys.readouterr().err
    assert "skipped b.png" in err and "cannot read image" in err and "restored 2 of 3" in err
    assert "1 image(s) could not be restored: b.png" in err
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    for name, rgb in good.items():
        np.testing.assert_array_equal(read_image(dst / name)[0], engine.restore(rgb))
    assert sorted(p.name for p in dst.iterdir()) == ["a.png", "c.png"], "a partial or temporary file was left"


def test_console_script_help():
    exe = shutil.which("irflow")
    cmd = [exe] if exe else [sys.executable, "-m", "irflow_engine.cli"]
    out = subprocess.run(cmd + ["restore", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--overwrite" in out and "--model" in out
    # The bundled models are named where --model is explained (argparse may wrap at a hyphen).
    flat = " ".join(out.split())
    assert all(name in flat or name.replace("-", "- ") in flat for name in ("irflow-denoise-s", "irflow-derain-s"))


def test_demo_command(tmp_path, tiny_checkpoint, capsys):
    assert main(["demo", "-o", str(tmp_path / "d"), "--model", str(tiny_checkpoint), "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "PSNR noisy" in out and "held out of training" in out
    noisy, _ = read_image(tmp_path / "d" / "noisy.png")
    side, _ = read_image(tmp_path / "d" / "side_by_side.png")
    assert side.shape[1] == 3 * noisy.shape[1] + 16 and side.shape[0] == noisy.shape[0]


@pytest.mark.parametrize("src_suffix, dst_suffix, with_alpha, mode", [
    (".png", ".png", False, "L"), (".jpg", ".jpg", False, "L"), (".png", ".tif", True, "LA"),
    (".png", ".webp", True, "RGBA"),   # WebP has no grey + alpha: colour, without the grey profile
])
def test_grey_image_stays_grey(src_suffix, dst_suffix, with_alpha, mode, tmp_path, tiny_checkpoint):
    """A grey scan was written back as RGB (three times the bytes, and any tint of the model); it is
    written grey (the luma of the restoration), with its alpha and its grey ICC profile."""
    from PIL import Image

    rng = np.random.default_rng(4)
    grey = rng.integers(0, 256, size=(19, 23), dtype=np.uint8)
    alpha = rng.integers(0, 256, size=(19, 23), dtype=np.uint8)
    profile = bytearray(_srgb_profile())
    profile[16:20] = b"GRAY"                      # a grey profile's header (passed through as bytes)
    im = Image.fromarray(grey, "L")
    if with_alpha:
        im.putalpha(Image.fromarray(alpha, "L"))
    src = tmp_path / f"in{src_suffix}"
    im.save(src, icc_profile=bytes(profile), **({"quality": 100} if src_suffix == ".jpg" else {}))
    out = tmp_path / f"out{dst_suffix}"
    assert main(["restore", str(src), "-o", str(out), "--model", str(tiny_checkpoint), "--steps", "1"]) == 0
    with Image.open(src) as a, Image.open(out) as b:
        assert b.mode == mode
        assert (b.info.get("icc_profile") == bytes(profile)) == mode.startswith("L")
        decoded = np.asarray(a.convert("RGB"))
        got = np.asarray(b.convert("L"), dtype=np.float64)
        got_alpha = np.asarray(b)[..., -1] if with_alpha else None
    restored = Engine.from_checkpoint(tiny_checkpoint, steps=1).restore(decoded)
    expected = np.asarray(Image.fromarray(restored, "RGB").convert("L"), dtype=np.float64)
    worst = 0 if dst_suffix in (".png", ".tif") else 8   # lossy JPEG/WebP on noise: ~5
    assert np.abs(got - expected).mean() <= worst
    if with_alpha:
        np.testing.assert_array_equal(got_alpha, alpha)

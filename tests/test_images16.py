"""Image files beyond 8-bit RGB. 16-bit PNG and TIFF (irflow_engine/images16.py): read and
written with all 16 bits, where Pillow alone would keep 8; `irflow restore` keeps 16-bit files
16-bit. Float TIFFs are refused, multi-page files named."""

import numpy as np
import pytest

from irflow_engine import Engine, images16
from irflow_engine.cli import main
from irflow_engine.images import load_image, to_uint8, write_image


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _codes(seed, shape):
    return np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_round_trip_is_exact(tmp_path, suffix, with_alpha):
    rgb, alpha = _codes(1, (9, 13, 3)), (_codes(2, (9, 13)) if with_alpha else None)
    rgb[0, 0] = (0, 255, 65535)   # a low byte alone, and both extremes
    path = tmp_path / f"deep{suffix}"
    write_image(path, rgb, alpha)
    assert images16.is_16bit(path)
    image = load_image(path)
    np.testing.assert_array_equal(image.rgb16, rgb)
    np.testing.assert_array_equal(image.rgb, to_uint8(rgb))       # the 8-bit view, rounded
    if with_alpha:
        np.testing.assert_array_equal(image.alpha16, alpha)
        np.testing.assert_array_equal(image.alpha, to_uint8(alpha))
    else:
        assert image.alpha16 is None and image.alpha is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary file left


def _pillow(path):
    from PIL import Image

    im = Image.open(path)
    im.load()
    return im


def test_pillow_alone_would_lose_the_low_byte(tmp_path):
    """Why images16 exists: Pillow opens a 16-bit RGB PNG as 8-bit."""
    rgb = _codes(3, (4, 5, 3))
    write_image(tmp_path / "d.png", rgb)
    im = _pillow(tmp_path / "d.png")
    assert im.mode == "RGB" and np.asarray(im).dtype == np.uint8
    assert not images16.is_16bit(_write8(tmp_path / "e.png"))


def _write8(path):
    write_image(path, np.random.default_rng(4).integers(0, 256, (4, 5, 3), dtype=np.uint8))
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_icc_profile_is_kept(tmp_path, suffix):
    """A 16-bit ProPhoto/Adobe RGB export means nothing without its profile: it is written back."""
    profile = _srgb_profile()
    rgb = _codes(5, (6, 7, 3))
    write_image(tmp_path / f"p{suffix}", rgb, icc_profile=profile)
    image = load_image(tmp_path / f"p{suffix}")
    assert image.icc_profile == profile
    np.testing.assert_array_equal(image.rgb16, rgb)


def test_tiff_layouts_from_other_writers(tmp_path):
    """Planar (separate) RGB and grey + alpha TIFFs, as tifffile writes them for other software."""
    import tifffile

    rgb = _codes(12, (3, 5, 6))                                   # samples first
    tifffile.imwrite(tmp_path / "planar.tif", rgb, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(load_image(tmp_path / "planar.tif").rgb16, np.moveaxis(rgb, 0, -1))
    grey_alpha = _codes(13, (5, 6, 2))
    tifffile.imwrite(tmp_path / "ga.tif", grey_alpha, photometric="minisblack", extrasamples=["unassalpha"])
    image = load_image(tmp_path / "ga.tif")
    np.testing.assert_array_equal(image.rgb16, np.repeat(grey_alpha[..., :1], 3, axis=2))
    np.testing.assert_array_equal(image.alpha16, grey_alpha[..., 1])


def test_uint8_conversion_closed_form():
    codes = np.array([0, 128, 129, 257, 385, 386, 65535], np.uint16)
    np.testing.assert_array_equal(to_uint8(codes), [0, 0, 1, 1, 1, 2, 255])   # round(c / 257)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_equals_pillow_exif_transpose(orientation):
    from PIL import Image, ImageOps

    stored = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(stored)
    im.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(images16.orient(stored, orientation), expected)


def test_a_corrupt_16bit_png_names_the_file(tmp_path):
    from irflow_engine.images import ImageFileError

    rgb = _codes(6, (8, 8, 3))
    write_image(tmp_path / "c.png", rgb)
    data = (tmp_path / "c.png").read_bytes()
    (tmp_path / "c.png").write_bytes(data[: len(data) // 2])   # cut inside the pixel data
    with pytest.raises(ImageFileError, match="c.png"):
        load_image(tmp_path / "c.png")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_cli_restores_16bit_files_at_16_bits(tmp_path, tiny_checkpoint, suffix):
    """16-bit in, 16-bit out, equal to the engine on the float samples (not on an 8-bit rounding);
    the alpha channel is kept with its 16 bits."""
    rgb, alpha = _codes(7, (19, 23, 3)), _codes(8, (19, 23))
    src, dst = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write_image(src, rgb, alpha)
    assert main(["restore", str(src), "-o", str(dst), "--model", str(tiny_checkpoint), "--steps", "2",
                 "--backend", "eager"]) == 0
    out = load_image(dst)
    assert out.rgb16 is not None
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=2)
    expected = engine.restore(rgb.astype(np.float64) / 65535)          # float in, float out
    assert np.abs(out.rgb16 / 65535 - expected).max() <= 1 / 65535
    np.testing.assert_array_equal(out.alpha16, alpha)
    from_8bit = engine.restore(to_uint8(rgb)).astype(np.float64) / 255
    assert np.abs(out.rgb16 / 65535 - from_8bit).mean() > 10 / 65535   # the low bits mattered


def test_float_images_are_refused_and_extra_pages_named(tmp_path, caplog):
    """A 32-bit float TIFF has no defined scale: a clear error, not a clipped black image. A
    multi-page TIFF restores its first page and says so."""
    import logging

    from PIL import Image

    from irflow_engine.images import ImageFileError

    Image.fromarray(np.random.default_rng(11).random((6, 8)).astype(np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ImageFileError, match=r"f\.tif: 32-bit floating-point samples are not supported"):
        load_image(tmp_path / "f.tif")
    pages = [Image.fromarray(np.full((6, 8, 3), v, np.uint8)) for v in (10, 200)]
    pages[0].save(tmp_path / "m.tif", save_all=True, append_images=pages[1:])
    with caplog.at_level(logging.WARNING):
        image = load_image(tmp_path / "m.tif")
    assert (image.rgb == 10).all() and "holds 2 pages or frames; only the first is restored" in caplog.text


def test_tiff_orientation_tag_is_applied(tmp_path):
    import tifffile

    stored = _codes(14, (5, 7, 3))
    tifffile.imwrite(tmp_path / "o.tif", stored, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    np.testing.assert_array_equal(load_image(tmp_path / "o.tif").rgb16, np.rot90(stored, k=-1))   # 90° clockwise


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_sixteen_bit_grey_stays_sixteen_bit_grey(tmp_path, tiny_checkpoint, suffix, with_alpha):
    """A 16-bit grey scan (a film or X-ray scan, a scientific camera) was written back as 16-bit RGB;
    it stays 16-bit grey: the luma of the restoration (ITU-R 601 weights, as 8-bit grey), its alpha
    exact."""
    grey, alpha = _codes(7, (11, 14)), (_codes(8, (11, 14)) if with_alpha else None)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    src = tmp_path / f"in{suffix}"
    src.write_bytes(images16.encode(src, rgb, alpha, grey=True))
    image = load_image(src)
    assert image.grey and np.array_equal(image.rgb16, rgb)
    out = tmp_path / f"out{suffix}"
    assert main(["restore", str(src), "-o", str(out), "--model", str(tiny_checkpoint), "--steps", "1"]) == 0
    got = load_image(out)
    assert got.grey and got.rgb16.dtype == np.uint16
    _, _, _, _, grey_file = images16.decode(out)
    assert grey_file
    expected = images16.luma16(Engine.from_checkpoint(tiny_checkpoint, steps=1).restore(rgb))
    # (one code of 65535 apart where the backends' float rounding differs)
    np.testing.assert_allclose(got.rgb16[..., 0].astype(np.int64), expected.astype(np.int64), atol=1, rtol=0)
    if with_alpha:
        np.testing.assert_array_equal(got.alpha16, alpha)

"""Write-then-rename: the final file appears only on success, with ordinary permissions."""

import os
import re
import stat

import pytest

from irflow_engine.atomic import atomic_path


def test_success_renames_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        assert not target.exists()
        with open(tmp, "wb") as f:
            f.write(b"data")
    assert target.read_bytes() == b"data"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_failure_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_writer_that_recreates_the_file_privately_still_gives_umask_permissions(tmp_path):
    # safetensors 0.8 replaces the target with a 0o600 file; checkpoints must stay readable.
    target = tmp_path / "w.safetensors"
    with atomic_path(target) as tmp:
        os.unlink(tmp)
        os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_saved_checkpoints_are_not_private(tmp_path):
    from irflow_engine.checkpoint import save_checkpoint
    from irflow_engine.config import ModelConfig
    from irflow_engine.models import ConditionalUNet

    cfg = ModelConfig(nf=8, depth=3)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, ConditionalUNet.from_config(cfg), cfg)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_an_unwritable_destination_is_named_and_leaves_nothing(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    for target in (blocker / "out.bin", blocker / "sub" / "out.bin"):
        with pytest.raises(NotADirectoryError, match=re.escape(f"cannot write {target}: a file is in the way")):
            with atomic_path(target):
                pytest.fail("the body must not run")

    real_open = os.open

    def refuse(path, *args, **kwargs):   # what a read-only folder answers (root ignores chmod)
        if str(path).startswith(str(tmp_path / ".out.bin")):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    target = tmp_path / "out.bin"
    with pytest.raises(PermissionError, match=re.escape(f"cannot write {target}: Permission denied")) as info:
        with atomic_path(target):
            pytest.fail("the body must not run")
    assert info.value.filename is None and ".out.bin" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]

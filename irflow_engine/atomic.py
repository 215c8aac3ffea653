"""Write-then-rename, so that a failure never leaves a half-written file under the final name."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it to `path` on success, delete it on error.

    The temporary file lives in the destination folder (same file system, so the rename is
    atomic) and is hidden (leading dot). `suffix` lets writers that pick a format from the file
    name (Pillow) see the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

"""Write-then-rename, so that a failure never leaves a half-written file under the final name."""

from __future__ import annotations

import errno
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it to `path` on success, delete it on error.

    The temporary file lives in the destination folder (same file system, so the rename is
    atomic) and is hidden (leading dot). `suffix` lets writers that pick a format from the file
    name (Pillow) see the right one. A destination that cannot be written raises an OSError that
    names it (not the temporary file).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):   # something on the way is a file
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write {path}: a file is in the way of its folder "
                                 f"{path.parent}") from None
    except OSError as e:
        raise type(e)(e.errno, f"cannot write {path}: cannot create its folder ({e.strerror})") from None
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            # Created like any new file (0o666 less the umask), unlike mkstemp's private 0o600.
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            mode = os.stat(tmp).st_mode & 0o777
            break
        except FileExistsError:
            continue
        except OSError as e:   # named by the destination, not by the hidden temporary file
            raise type(e)(e.errno, f"cannot write {path}: {e.strerror}") from None
    try:
        yield tmp
        # Some writers replace the file with a private one (safetensors 0.8 writes 0o600): restore.
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

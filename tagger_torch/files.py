"""Files: the one atomic writer and the array readers, for both twins and every command (no torch).

* `atomic_output(path)` yields a temporary path beside `path` and renames it over `path` when the
  block succeeds, so a crash or a signal at any moment leaves the old file or the new one, never
  half of one (run directories, data sets, figures, scores).
* `load_npy(path, what)` and `read_npz(path, what)` read arrays and turn every failure into one
  `TaggerError` line that names the file by its role (`what`: "input", "noise", "parameter", ...).
* `save_npz(path, arrays)` writes arrays as the release saved its parameters (compressed, float32).
* `read_json(path)` (None when the file is missing) and `ensure_writable_dir(path, label)` (one line
  when a folder cannot be made or written).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import Callable, Dict, Iterator, Mapping, Optional

import numpy as np

from .errors import TaggerError


def read_json(path: str) -> Optional[dict]:
    """The JSON file at `path`, or None when there is no such file."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ensure_writable_dir(path: str, label: str) -> None:
    """Make the folder `path` if needed and check that a file can be written in it; else TaggerError
    "cannot write to {label}{path}: ..."."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise TaggerError(f"cannot write to {label}{path}: {e.strerror or e}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str, label: str = "", make_dirs: bool = False) -> Iterator[str]:
    """Yield a temporary path `PATH.tmp-XXXX` beside `path`; rename it to `path` on success.

    On any error (KeyboardInterrupt included) the temporary file is removed and the error passes on.
    make_dirs: create a missing parent directory. A path that cannot be written raises TaggerError
    ("cannot write {label}{path}: ...") before the block runs.
    """
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    if os.path.isdir(path):
        raise TaggerError(f"cannot write {label}{path}: it is a directory")
    try:
        if make_dirs:
            os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=name + ".tmp-", dir=directory)
    except OSError as e:
        raise TaggerError(f"cannot write {label}{path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it 0600; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`."""
    with atomic_output(path) as tmp:
        write(tmp)


def write_text(path: str, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(path, write)


def _load(path: str, what: str):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise TaggerError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise TaggerError(f"cannot read {what} file {path}: it is a directory") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise TaggerError(f"cannot read {what} file {path}: {e}") from None


def load_npy(path: str, what: str) -> np.ndarray:
    """One numeric array from an .npy file; `what` names the file's role in error messages."""
    array = _load(path, what)
    if not isinstance(array, np.ndarray):
        array.close()
        raise TaggerError(f"{what} file {path} must be an .npy array, not an .npz archive")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TaggerError(f"{what} file {path} must hold numbers (got {array.dtype})")
    return array


def read_npz(path: str, what: str = "parameter") -> Dict[str, np.ndarray]:
    """Every array of an .npz archive, by name; `what` names the file's role in error messages."""
    archive = _load(path, what)
    if isinstance(archive, np.ndarray):
        raise TaggerError(f"{what} file {path} must be an .npz archive of named arrays")
    try:
        with archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise TaggerError(f"cannot read {what} file {path}: {e}") from None


def save_npz(path: str, arrays: Mapping[str, np.ndarray], dtype: Optional[type] = np.float32,
             compressed: bool = True) -> None:
    """Write `arrays` to exactly `path` (no '.npz' appended), as the release saved its parameters:
    one array per name, compressed, cast to `dtype` (None: as they are)."""
    arrays = {name: np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
              for name, value in arrays.items()}
    try:
        with open(path, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
    except OSError as e:
        raise TaggerError(f"cannot write {path}: {e.strerror or e}") from None

"""Files: the one atomic writer and the array readers, for both twins and every command (no torch).

* `atomic_output(path)` yields a temporary path beside `path` and renames it over `path` when the
  block succeeds, so a crash or a signal at any moment leaves the old file or the new one, never
  half of one (run directories, data sets, figures, scores).
* `load_npy(path, what)` and `read_npz(path, what)` read arrays and turn every failure into one
  `TaggerError` line that names the file by its role (`what`: "input", "noise", "parameter", ...).
* `save_npz(path, arrays)` writes arrays as the release saved its parameters (compressed, float32).
* `save_npz_parts(path, arrays, part_bytes)` writes them as one archive or, past `part_bytes`, as
  several (`path`, `STEM-2.npz`, ...: shipped weights stay under GitHub's 50 MB a file), and
  `read_npz_parts(path, what)` reads such an archive back whole.
* `read_json(path)` (None when the file is missing) and `ensure_writable_dir(path, label)` (one line
  when a folder cannot be made or written).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import Callable, Dict, Iterator, List, Mapping, Optional

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


PARTS_KEY = "__parts__"  # in the first part of an archive written in parts: the file names of the others
PART_OF_KEY = "__part_of__"  # in each other part: the first part's file name


def _part_paths(path: str, n_parts: int) -> List[str]:
    """The files of an archive in `n_parts` parts: `path` itself (STEM.npz), then STEM-2.npz, STEM-3.npz, ..."""
    stem = path[:-len(".npz")] if path.endswith(".npz") else path
    return [path] + [f"{stem}-{i}.npz" for i in range(2, n_parts + 1)]


def _split_arrays(arrays: Mapping[str, np.ndarray], part_bytes: int) -> List[Dict[str, np.ndarray]]:
    """`arrays` in their order, cut into consecutive groups of at most `part_bytes` bytes each (an array
    larger than that forms a group of its own)."""
    parts: List[Dict[str, np.ndarray]] = [{}]
    size = 0
    for name, value in arrays.items():
        if parts[-1] and size + value.nbytes > part_bytes:
            parts.append({})
            size = 0
        parts[-1][name] = value
        size += value.nbytes
    return parts


def save_npz_parts(path: str, arrays: Mapping[str, np.ndarray], part_bytes: int) -> None:
    """Write `arrays` (as they are, compressed) atomically to `path`, or, when they hold more than
    `part_bytes` bytes, to the files of `_part_paths`: the first lists the others under PARTS_KEY, each
    other names the first under PART_OF_KEY. Parts of an earlier, larger write are removed."""
    parts = _split_arrays({name: np.asarray(value) for name, value in arrays.items()}, part_bytes)
    paths = _part_paths(path, len(parts))
    first = os.path.basename(path)
    for part, part_path in zip(parts[1:], paths[1:]):
        atomic_write(part_path, lambda tmp, part=part: save_npz(tmp, {**part, PART_OF_KEY: np.array(first)}, dtype=None))
    others = [os.path.basename(p) for p in paths[1:]]
    atomic_write(path, lambda tmp: save_npz(tmp, {**parts[0], **({PARTS_KEY: np.array(others)} if others else {})},
                                            dtype=None))
    extra = len(parts) + 1  # the parts of an earlier, larger write
    while os.path.isfile(_part_paths(path, extra)[-1]):
        os.remove(_part_paths(path, extra)[-1])
        extra += 1


def _listed(path: str, others) -> List[str]:
    """`path` and the other parts its PARTS_KEY array `others` names (None: none), beside it."""
    names = [] if others is None else np.atleast_1d(others).tolist()
    return [path] + [os.path.join(os.path.dirname(path), name) for name in names]


def npz_part_files(path: str) -> List[str]:
    """The files of the archive `path`: itself, then the other parts it lists (`save_npz_parts`)."""
    with np.load(path) as archive:
        return _listed(path, archive[PARTS_KEY] if PARTS_KEY in archive.files else None)


def read_npz_parts(path: str, what: str = "parameter") -> Dict[str, np.ndarray]:
    """Every array of the .npz archive `path`, with those of its other parts when `save_npz_parts`
    wrote it in parts; TaggerError for a part other than the first, or a part that is missing."""
    arrays = read_npz(path, what)
    if PART_OF_KEY in arrays:
        raise TaggerError(f"{what} file {path} is one part of {arrays[PART_OF_KEY]}: read that file, "
                          "which reads every part")
    for other in _listed(path, arrays.pop(PARTS_KEY, None))[1:]:
        part = read_npz(other, what)
        part.pop(PART_OF_KEY, None)
        arrays.update(part)
    return arrays

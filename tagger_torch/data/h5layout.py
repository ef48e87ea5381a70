"""The release's HDF5 layout (Fuel 0.2 `H5PYDataset`, SPEC 9): writer and reader.

Layout: one HDF5 dataset per source (`features`, `mask`, `targets`, `codes`) holding all splits
concatenated in split order, gzip-compressed; the root attribute `split` is Fuel's structured array
with one row per (split, source): split, source, start, stop, indices (HDF5 object reference,
null), available, comment ('.'). A split's rows of a source are `dataset[start:stop]`.

NumPy and h5py only (no torch): training, evaluation and the NumPy reference all read through
`dataset_info` and `load_split`.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple

import h5py
import numpy as np

from ..errors import TaggerError
from .standard import how_to_make

INPUT_TYPES = ("binary", "continuous")
SCAN_ROWS = 5000  # rows read at a time when scanning a whole source


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def split_array(rows: Sequence[Tuple[str, str, int, int]]) -> np.ndarray:
    """Fuel's `split` attribute for rows (split, source, start, stop); every row is available.

    Fuel sizes the string fields to the longest name and writes a null reference for `indices`
    and '.' for an empty comment. Row order: splits in file order, sources sorted (Fuel sorts the
    sources; the release's split order was Python 2's dict order, which readers do not use).
    """
    dtype = np.dtype([
        ("split", "S%d" % max(len(r[0]) for r in rows)),
        ("source", "S%d" % max(len(r[1]) for r in rows)),
        ("start", np.int64),
        ("stop", np.int64),
        ("indices", h5py.ref_dtype),
        ("available", np.bool_),
        ("comment", "S1"),
    ])
    table = np.empty(len(rows), dtype=dtype)
    for i, (split, source, start, stop) in enumerate(rows):
        table[i] = (split.encode(), source.encode(), start, stop, h5py.Reference(), True, b".")
    return table


def write_fuel_file(f: h5py.File, splits: Mapping[str, Mapping[str, np.ndarray]],
                    description: Optional[str] = None) -> None:
    """Write {split: {source: array}} into the open file `f` in the release's layout.

    Like Fuel's `fill_hdf5_file` followed by the release's `compress_fuel`: each source is one
    gzip dataset (h5py's default level 4 and automatic chunks), splits concatenated in the
    mapping's order. Every split must have the same sources; sources agree in dtype and row shape.
    `description` becomes the root attribute of that name (the release's Shapes file has one).
    """
    split_names = list(splits)
    sources = list(splits[split_names[0]])
    for name in split_names:
        if sorted(splits[name]) != sorted(sources):
            raise ValueError(f"split {name!r} has sources {sorted(splits[name])}, expected {sorted(sources)}")
        lengths = {len(a) for a in splits[name].values()}
        if len(lengths) != 1:
            raise ValueError(f"split {name!r} has sources of different lengths {sorted(lengths)}")
    rows = []
    for source in sources:
        parts = [splits[name][source] for name in split_names]
        total = sum(len(p) for p in parts)
        dataset = f.create_dataset(source, (total,) + parts[0].shape[1:], dtype=parts[0].dtype,
                                   compression="gzip")
        start = 0
        for name, part in zip(split_names, parts):
            dataset[start:start + len(part)] = part
            rows.append((name, source, start, start + len(part)))
            start += len(part)
    order = {name: i for i, name in enumerate(split_names)}
    rows.sort(key=lambda r: (order[r[0]], r[1]))
    f.attrs["split"] = split_array(rows)
    if description is not None:
        f.attrs["description"] = description


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data file (see `dataset_info`)."""

    path: str
    input_type: str  # 'binary' (features all in {0, 1}) or 'continuous'
    in_dim: Tuple[int, ...]  # shape of one example, e.g. (400,) or (1, 28, 28); D = prod(in_dim)
    splits: Dict[str, int]  # split name -> number of examples, in file order
    sources: Tuple[str, ...]  # HDF5 datasets named in the `split` attribute
    has_labels: bool  # `targets` exists and holds real labels (not all zeros, as in Shapes)
    objects_per_sample: int  # columns of `targets` (digits per image); 1 without targets
    n_mask_groups: Optional[int]  # ground-truth groups in `mask` (axis 1); None without a mask


@contextlib.contextmanager
def open_fuel_file(path: str) -> Iterator[Tuple[h5py.File, Dict[str, Dict[str, Tuple[int, int]]]]]:
    """Open `path` read-only; yield (file, {split: {source: (start, stop)}}) from its `split` table.

    Raises TaggerError for a missing or non-HDF5 file, a file without a readable `split`
    attribute, a row pointing outside its source, and Fuel's subset rows (non-null `indices`),
    which neither the release nor this package writes.
    """
    if not os.path.exists(path):
        raise TaggerError(f"data file not found: {path}; {how_to_make(path)}")
    if os.path.isdir(path) or not h5py.is_hdf5(path):
        raise TaggerError(f"not an HDF5 file: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise TaggerError(f"cannot open HDF5 file {path}: {e}") from None
    with f:
        yield f, _split_table(f, path)


def _split_table(f: h5py.File, path: str) -> Dict[str, Dict[str, Tuple[int, int]]]:
    if "split" not in f.attrs:
        raise TaggerError(f"{path} has no 'split' attribute (not in the Fuel H5PYDataset layout)")
    table = f.attrs["split"]
    names = getattr(getattr(table, "dtype", None), "names", None) or ()
    missing = {"split", "source", "start", "stop", "available"} - set(names)
    if missing:
        raise TaggerError(f"{path}: the 'split' attribute lacks the field(s) {', '.join(sorted(missing))}")
    splits: Dict[str, Dict[str, Tuple[int, int]]] = {}
    for row in np.atleast_1d(table):
        split, source = _text(row["split"]), _text(row["source"])
        splits.setdefault(split, {})
        if not row["available"]:
            continue
        if "indices" in names and row["indices"]:
            raise TaggerError(f"{path}: split '{split}' of '{source}' selects rows by an index list, "
                              "which is not supported")
        start, stop = int(row["start"]), int(row["stop"])
        if source not in f or not isinstance(f[source], h5py.Dataset):
            raise TaggerError(f"{path}: the 'split' attribute names source '{source}', which is not in the file")
        if not 0 <= start <= stop <= f[source].shape[0]:
            raise TaggerError(f"{path}: split '{split}' of '{source}' has rows {start}:{stop}, "
                              f"outside the {f[source].shape[0]} rows of '{source}'")
        splits[split][source] = (start, stop)
    return splits


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _rows(table, path: str, split: str, sources: Sequence[str]) -> Dict[str, Tuple[int, int]]:
    """(start, stop) of each source in `split`, checking that all have the same length."""
    if split not in table:
        raise TaggerError(f"{path} has no split '{split}' (it has: {', '.join(table)})")
    rows = {}
    for source in sources:
        if source not in table[split]:
            raise TaggerError(f"{path}: split '{split}' has no source '{source}' "
                              f"(it has: {', '.join(table[split]) or 'none'})")
        rows[source] = table[split][source]
    lengths = {source: stop - start for source, (start, stop) in rows.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{s} {n}" for s, n in lengths.items())
        raise TaggerError(f"{path}: split '{split}' has sources of different lengths ({detail})")
    return rows


def load_split(path: str, split: str, sources: Sequence[str] = ("features", "mask", "targets"),
               limit: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Read one split's rows of each source: {source: array of shape (n_examples, ...)}; with `limit`
    only its first `limit` rows.

    Arrays keep the file's dtypes (float32 features and masks; uint8 or int64 targets).
    Raises TaggerError on a bad file, an absent split or source, or sources of unequal length.
    """
    with open_fuel_file(path) as (f, table):
        rows = _rows(table, path, split, sources)
        return {source: f[source][start:stop if limit is None else min(stop, start + limit)]
                for source, (start, stop) in rows.items()}


def scan_rows(dataset: h5py.Dataset, start: int, stop: int) -> Iterator[np.ndarray]:
    """Rows start:stop of `dataset`, SCAN_ROWS at a time."""
    for i in range(start, stop, SCAN_ROWS):
        yield dataset[i:min(i + SCAN_ROWS, stop)]


def is_binary(dataset: h5py.Dataset) -> bool:
    """True when every value of `dataset` is 0 or 1 (stops at the first block that is not)."""
    return all(np.all((block == 0) | (block == 1)) for block in scan_rows(dataset, 0, dataset.shape[0]))


def dataset_info(path: str, input_type: Optional[str] = None) -> DatasetInfo:
    """Describe a file in the release layout (the release's own files included).

    input_type: None decides from the data: 'binary' when every value of `features` (all splits)
    is exactly 0 or 1, else 'continuous'; pass 'binary' or 'continuous' to override.
    has_labels: `targets` exists and is not all zeros (Shapes' placeholder targets are zeros).
    """
    if input_type is not None and input_type not in INPUT_TYPES:
        raise TaggerError(f"input type must be one of {', '.join(INPUT_TYPES)} (got {input_type!r})")
    with open_fuel_file(path) as (f, table):
        sources = tuple(dict.fromkeys(s for split in table.values() for s in split))
        if "features" not in sources:
            raise TaggerError(f"{path} has no source 'features'")
        splits = {}
        for name, split_rows in table.items():
            rows = _rows(table, path, name, list(split_rows))  # checks equal lengths
            splits[name] = next((stop - start for start, stop in rows.values()), 0)
        features = f["features"]
        if input_type is None:
            input_type = "binary" if is_binary(features) else "continuous"
        has_labels, objects_per_sample = False, 1
        if "targets" in sources:
            targets = f["targets"]
            objects_per_sample = int(np.prod(targets.shape[1:], dtype=np.int64))
            has_labels = any(np.any(block != 0) for block in scan_rows(targets, 0, targets.shape[0]))
        n_mask_groups = int(f["mask"].shape[1]) if "mask" in sources and f["mask"].ndim > 1 else None
        return DatasetInfo(path=path, input_type=input_type, in_dim=tuple(int(d) for d in features.shape[1:]),
                           splits=splits, sources=sources, has_labels=has_labels,
                           objects_per_sample=objects_per_sample, n_mask_groups=n_mask_groups)

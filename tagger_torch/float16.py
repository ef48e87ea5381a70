"""Shipped weights in float16: the cast with what it changed, its file, and float32 values consistent
with a float16 copy (for checks when the float32 original is gone). Used by publish.py."""
from __future__ import annotations

import hashlib
import os
from typing import Mapping

import numpy as np

from .errors import TaggerError
from .files import read_npz, read_npz_parts, save_npz_parts

PART_BYTES = 45_000_000  # float16 bytes a shipped parameter file holds at most (GitHub warns above 50 MB a file)
FP16_MAX = float(np.finfo(np.float16).max)
FP16_TINY = float(np.finfo(np.float16).tiny)  # smallest normal float16


def to_float16(params: Mapping[str, np.ndarray]) -> tuple:
    """(the parameters cast to float16, what the cast did: largest absolute and relative change of a
    weight, how many non-zero weights became 0 or subnormal). TaggerError for values float16 cannot
    hold (non-finite, or beyond +-65504)."""
    out, max_abs, max_rel, zeroed, subnormal = {}, 0.0, 0.0, 0, 0
    for name, value in params.items():
        value = np.asarray(value, dtype=np.float32)
        if not np.all(np.isfinite(value)) or (value.size and np.abs(value).max() > FP16_MAX):
            raise TaggerError(f"parameter {name} holds values float16 cannot store (non-finite or beyond "
                              f"+-{FP16_MAX:g})")
        half = value.astype(np.float16)
        change = np.abs(half.astype(np.float32) - value)
        normal = np.abs(value) >= FP16_TINY
        max_abs = max(max_abs, float(change.max(initial=0.0)))
        max_rel = max(max_rel, float((change[normal] / np.abs(value[normal])).max(initial=0.0)))
        zeroed += int(np.count_nonzero((value != 0) & (half == 0)))
        subnormal += int(np.count_nonzero((half != 0) & (np.abs(half) < FP16_TINY)))
        out[name] = half
    n = sum(int(np.size(v)) for v in out.values())
    return out, dict(n_parameters=n, max_abs_change=max_abs, max_rel_change_normal=max_rel,
                     n_became_zero=zeroed, n_subnormal=subnormal)


def params_digest(params: Mapping[str, np.ndarray]) -> str:
    """sha256 of the parameters' names, dtypes, shapes and values (not of the file's bytes)."""
    h = hashlib.sha256()
    for name in sorted(params):
        a = np.ascontiguousarray(params[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def rounding_preimage(half: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 values drawn uniformly, element by element, from the interval of reals that round to
    `half` (float16, round to nearest): a float32 original the float16 copy is consistent with."""
    h = half.astype(np.float64)
    with np.errstate(over="ignore"):
        below = np.nextafter(half, np.float16(-np.inf)).astype(np.float64)
        above = np.nextafter(half, np.float16(np.inf)).astype(np.float64)
    below = np.where(np.isinf(below), 2 * h - above, below)  # +-65504: mirror the finite neighbour
    above = np.where(np.isinf(above), 2 * h - below, above)
    low, high = (h + below) / 2, (h + above) / 2
    draws = np.asarray(low + rng.random(half.shape) * (high - low), dtype=np.float32)  # 0-d stays an array
    # a draw cast onto the midpoint between two float16 values may round to the neighbour: one float32 step inwards
    off = draws.astype(np.float16) != half
    draws[off] = np.nextafter(draws[off], h[off].astype(np.float32))
    return draws


def export_float16(src: str, out: str, part_bytes: int = PART_BYTES) -> dict:
    """Write the parameters of `src` (.npz) to `out` as float16 (compressed, release names), in parts of
    at most `part_bytes` bytes (`files.save_npz_parts`: `out`, then OUT-2.npz, ... for a large model).

    An existing `out` holding exactly these float16 values, in all its parts, is left as it is (its
    bytes, so git sees no change). Returns `to_float16`'s facts and `written` (False when kept)."""
    half, facts = to_float16(read_npz(src, "parameter"))
    written = True
    if os.path.isfile(out):
        try:
            old = read_npz_parts(out, "parameter")
        except TaggerError:  # a part missing or unreadable: written anew
            old = {}
        written = not (old.keys() == half.keys() and all(old[k].dtype == np.float16 and np.array_equal(old[k], half[k])
                                                         for k in half))
    if written:
        save_npz_parts(out, half, part_bytes)
    return dict(facts, written=written)

"""glibc malloc for the command line: freed memory kept for the next training step.

A training step allocates and frees the same large buffers every step. glibc's defaults return
freed memory at the top of its heap to the system (trimming) and serve large requests with mmap,
which each free unmaps, so every step faults the same pages in again: about 52 000 minor page
faults and 0.16-0.18 s of CPU time in the kernel a step for `freq20-2mnist-pretrain` on 2 cores
(docs/speed.md, "Memory"). `keep_freed_memory` turns both off; the process then keeps its peak heap until it exits.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt's parameters (glibc's malloc.h)
INT_MAX = 2 ** 31 - 1  # mallopt takes an int
OPT_OUT = "TAGGER_KEEP_FREED_MEMORY"  # "0": leave malloc at the C library's defaults
# glibc's own malloc settings: when the user set any, malloc stays as they set it
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TOP_PAD_",
                 "MALLOC_ARENA_MAX")
_kept = False  # whether keep_freed_memory changed malloc in this process


def keep_freed_memory() -> bool:
    """No trimming and no mmap for this process's malloc (glibc's mallopt); True when done. Nothing
    changes (False) without glibc, with TAGGER_KEEP_FREED_MEMORY=0, or when the environment holds the
    user's own malloc settings (USER_SETTINGS, or `glibc.malloc.` tunables in GLIBC_TUNABLES)."""
    global _kept
    if (os.environ.get(OPT_OUT) == "0" or any(name in os.environ for name in USER_SETTINGS)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")):
        return False
    try:  # the process's own symbols, its C library's among them (no search for the library's file)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt (macOS)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _kept = _kept or (mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1 and mallopt(M_MMAP_MAX, 0) == 1)
    return _kept


def kept_freed_memory() -> bool:
    """Whether keep_freed_memory has changed malloc in this process."""
    return _kept

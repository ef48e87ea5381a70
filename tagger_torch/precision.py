"""Precision policies for training and evaluation.

* ``fp32``: plain float32 (the parity-tested path).
* ``bf16``: matrix products under ``torch.autocast(dtype=bfloat16)``; master weights, normalisation,
  softmax, log/exp and costs stay float32 (the model casts each product back with ``.float()``).
  Default on CPUs with AMX/AVX-512-BF16 and on CUDA devices that support bf16.
* ``tf32``: CUDA only; float32 storage with TF32 tensor-core products.
"""
from __future__ import annotations

import contextlib

import torch

from .errors import TaggerError

PRECISIONS = ("fp32", "bf16", "tf32")


def resolve_device(device: str | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:1' or None/'auto' (CUDA when present) -> torch.device, with a clear error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise TaggerError(f"unknown device '{device}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TaggerError("--device cuda was asked for, but torch sees no CUDA device")
    return dev


def cpu_has_fast_bf16() -> bool:
    """True where the CPU runs bf16 matrix products natively (AMX or AVX-512 BF16)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return any(f in flags for f in (" amx_bf16", " avx512_bf16"))


def default_precision(device: torch.device) -> str:
    """bf16 where the hardware has fast bf16 products, else fp32."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def resolve_precision(precision: str | None, device: torch.device) -> str:
    if precision in (None, "auto"):
        return default_precision(device)
    if precision not in PRECISIONS:
        raise TaggerError(f"unknown precision '{precision}' (known: {', '.join(PRECISIONS)})")
    if precision == "tf32" and device.type != "cuda":
        raise TaggerError("precision tf32 needs a CUDA device")
    return precision


def autocast(precision: str, device: torch.device):
    """The context under which forward passes run for `precision`."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

"""Precision and compilation policies for training, evaluation and bench (docs/speed.md).

* ``fp32``: plain float32 (the parity-tested path), the default (``auto``).
* ``bf16``: matrix products under ``torch.autocast(dtype=bfloat16)``; master weights, normalisation,
  softmax, log/exp and costs stay float32 (`model.project` casts each product back to float32).
  1.9x faster on this project's AVX-512-BF16 CPU; opt-in (see `resolve_precision`).
* ``tf32``: CUDA only; float32 storage with TF32 tensor-core products.

``torch.compile`` of the training step pays once a run is long enough to repay the compilation
(about a minute on 2 CPU cores for the Shapes model): `default_compile` decides from the run's size.
"""
from __future__ import annotations

import contextlib

import torch

from .errors import TaggerError

PRECISIONS = ("fp32", "bf16", "tf32")

# Measured on the 2-core CPU (docs/speed.md): compiling the Shapes step costs ~60 s and saves ~15% of
# the step time at ~150 GFLOP/s achieved, so it pays after about 60 s * 150 GFLOP/s / 0.15 of work.
COMPILE_PAYS_AFTER_GFLOP = 60.0 * 150.0 / 0.15


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


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """'auto'/None -> fp32; else checked against PRECISIONS and the device.

    fp32 is the default although bf16 steps run 1.9x faster on AVX-512-BF16 CPUs: in the fp32/bf16
    comparison of docs/speed.md (Shapes preset, 3 epochs, two seeds each) the denoising costs agree
    within seed noise but bf16's AMI was lower (0.066 +- 0.023 against 0.114 +- 0.009), so bf16 stays
    an option (`--precision bf16`) until it is shown to group as well.
    """
    if precision in (None, "auto"):
        return "fp32"
    if precision not in PRECISIONS:
        raise TaggerError(f"unknown precision '{precision}' (known: auto, {', '.join(PRECISIONS)})")
    if precision == "tf32" and device.type != "cuda":
        raise TaggerError("precision tf32 needs a CUDA device")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TaggerError(f"precision bf16 is not supported by {torch.cuda.get_device_name(device)}")
    return precision


def default_compile(gflop_to_run: float) -> bool:
    """Compile when the work ahead (GFLOP, e.g. steps x bench.model_flop_per_step) repays compiling."""
    return gflop_to_run >= COMPILE_PAYS_AFTER_GFLOP


def autocast(precision: str, device: torch.device):
    """The context under which forward passes run for `precision` (fp32: none)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


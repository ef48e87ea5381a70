"""Precision and compilation policies for training, evaluation and bench (docs/speed.md).

* ``fp32``: plain float32 (the parity-tested path), the default (``auto``).
* ``bf16``: matrix products under ``torch.autocast(dtype=bfloat16)``; master weights, normalisation,
  softmax, log/exp and costs stay float32 (`ops.project` casts each product back to float32).
  1.9x faster on an AVX-512-BF16 CPU, about 20x *slower* on a CPU without native bf16 products
  (`cpu_bf16_native`); opt-in (see `resolve_precision`).
* ``tf32``: CUDA only; float32 storage with TF32 tensor-core products.

``torch.compile`` of the training step pays once a run is long enough to repay the compilation
(about a minute on 2 CPU cores for the Shapes model): `default_compile` decides from the run's size.
"""
from __future__ import annotations

import contextlib
import platform
import subprocess
import sys

import click
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
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise TaggerError(f"unknown device '{device}' (use cpu, cuda or cuda:N)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TaggerError(f"--device {device} was asked for, but torch sees no CUDA device")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise TaggerError(f"--device {device}: torch sees {count} CUDA device{'s' if count > 1 else ''} "
                          f"(cuda:0{f'..cuda:{count - 1}' if count > 1 else ''})")
    return dev


# Whether bf16 training has been shown to group as well as fp32 (docs/speed.md, "Quality"). Not yet:
# in the 3-epoch Shapes comparison (two seeds each) the denoising costs agree within seed noise but
# bf16's AMI was lower (0.066 +- 0.023 against 0.114 +- 0.009). Until it is, `auto` is fp32 everywhere.
BF16_GROUPS_AS_WELL = False


def _cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set:
    """The CPU's feature flags as the OS lists them (Linux: /proc/cpuinfo; macOS: sysctl); empty if unknown."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):  # x86 "flags", aarch64 "Features"
                    return set(value.split())
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                 timeout=5).stdout.strip()
            return {"bf16"} if out == "1" else set()
        except (OSError, subprocess.SubprocessError):
            pass
    return set()


def cpu_bf16_native() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware: AVX512_BF16 or AMX-BF16 on x86, the BF16
    extension on Arm. Without it torch converts bf16 operands to float32 element by element and a
    bf16 training step runs about 20x slower than fp32 (Zen 3, AVX2: 6 against 140-170 images/s)."""
    flags = _cpu_flags()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "i386"):
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    if machine in ("aarch64", "arm64"):
        return "bf16" in flags
    return False


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (/proc/cpuinfo's "model name"), with its x86 family and model numbers where
    the OS lists them, e.g. "AMD EPYC (family 25, model 1)": a virtual machine often names only the
    brand, and the numbers tell its generations apart (Zen 1 is family 23, Zen 3 and Zen 4 family 25).
    Else what `platform` knows."""
    fields = {}
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():  # the first processor's block ends
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine() or "unknown"
    if fields.get("cpu family") and fields.get("model"):
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


def processor_name(device: torch.device) -> str:
    """What computes on `device`: the CPU's `cpu_model`, or the CUDA device's name."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def cpu_capability() -> str:
    """The vector instruction set torch's CPU kernels dispatch to, e.g. 'AVX2', 'AVX512', 'DEFAULT'."""
    return torch.backends.cpu.get_cpu_capability()


def precision_warning(precision: str, device: torch.device) -> str | None:
    """One line to print before running `precision` on `device` when it will be slow there, else None."""
    if precision == "bf16" and device.type == "cpu" and not cpu_bf16_native():
        return ("Warning: this CPU has no native bf16 matrix products (no AVX512_BF16/AMX-BF16); "
                "--precision bf16 runs about 20x slower than fp32 here")
    return None


def warn_if_slow(precision: str, device: torch.device) -> None:
    """Print `precision_warning` (if any) as one line on stderr."""
    text = precision_warning(precision, device)
    if text:
        click.echo(text, err=True)


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """'auto'/None -> fp32; else checked against PRECISIONS and the device.

    auto would pick bf16 on a CPU only where the CPU does bf16 products natively *and* bf16 has been
    shown to group as well as fp32 (`BF16_GROUPS_AS_WELL`, not yet): today auto is fp32 everywhere.
    An explicit bf16 on a CPU without native bf16 is allowed; callers print `precision_warning`.
    """
    if precision in (None, "auto"):
        if device.type == "cpu" and BF16_GROUPS_AS_WELL and cpu_bf16_native():
            return "bf16"
        return "fp32"
    if precision not in PRECISIONS:
        raise TaggerError(f"unknown precision '{precision}' (known: auto, {', '.join(PRECISIONS)})")
    if precision == "tf32" and device.type != "cuda":
        raise TaggerError("precision tf32 needs a CUDA device")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TaggerError(f"precision bf16 is not supported by {torch.cuda.get_device_name(device)}")
    return precision


def default_compile(gflop_to_run: float) -> bool:
    """Compile when the work ahead (GFLOP, e.g. steps x the model's flop_per_step) repays compiling."""
    return gflop_to_run >= COMPILE_PAYS_AFTER_GFLOP


def compile_mode(device: torch.device, cuda_graphs: bool | None = None, world_size: int = 1) -> str:
    """torch.compile's mode for a training step: 'reduce-overhead' (CUDA graphs: the compiled forward's
    and backward's kernels recorded once and replayed as one launch each, for steps whose time goes
    to launching many small kernels) on a CUDA device in a single process; else 'default'.
    cuda_graphs: None (that rule), False (never), True (on CUDA, also under torchrun)."""
    if device.type != "cuda" or cuda_graphs is False or (cuda_graphs is None and world_size > 1):
        return "default"
    return "reduce-overhead"


def autocast(precision: str, device: torch.device):
    """The context under which forward passes run for `precision` (fp32: none)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


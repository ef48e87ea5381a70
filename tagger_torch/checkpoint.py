"""A training run's directory: atomic writes, the checkpoint, and loading a trained model back.

DIR/config.json   the run's TaggerConfig (release field names; `trace` and `evaluate` read it)
DIR/params.npz    the parameters in the release's format (one float32 array per release name)
DIR/checkpoint.pt everything needed to continue exactly: model, optimizer, RNG state, epoch, step
DIR/metrics.jsonl one JSON line per finished epoch; DIR/curves.png their plot
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Callable, Optional, Tuple

import torch

from .config import TaggerConfig, load_config
from .errors import TaggerError
from .params import load_npz, save_npz

CONFIG, PARAMS, CHECKPOINT, METRICS, CURVES = ("config.json", "params.npz", "checkpoint.pt",
                                               "metrics.jsonl", "curves.png")


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`.

    A crash or a signal at any moment leaves either the old file or the new one, never half of one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(path, write)


def save_params(path: str, model: torch.nn.Module) -> None:
    """DIR/params.npz: the model's parameters by release name, float32, as the release saved them."""
    params = {name: p.detach().cpu().float().numpy() for name, p in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_npz(tmp, params))


def save_checkpoint(path: str, state: dict) -> None:
    """Write the training state (tensors and plain Python values only) atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str) -> dict:
    if not os.path.exists(path):
        raise TaggerError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: torch raises several types
        raise TaggerError(f"cannot read checkpoint {path}: {e}") from None


def resolve_params_path(load_from: str) -> str:
    """A run directory (its params.npz) or an .npz file."""
    path = os.path.join(load_from, PARAMS) if os.path.isdir(load_from) else load_from
    if not os.path.isfile(path):
        raise TaggerError(f"no parameter file at {path}")
    return path


def load_model(run: Optional[str] = None, params: Optional[str] = None, config: Optional[str] = None,
               device: torch.device = torch.device("cpu")) -> Tuple[TaggerConfig, torch.nn.Module]:
    """A trained Tagger from a run directory (`run`) or from a parameter file and its config JSON."""
    from .model import Tagger

    if run is not None:
        if params is not None or config is not None:
            raise TaggerError("give either --run DIR or --params P.npz with --config CFG.json, not both")
        if not os.path.isdir(run):
            raise TaggerError(f"run directory not found: {run}")
        params, config = os.path.join(run, PARAMS), os.path.join(run, CONFIG)
    elif params is None or config is None:
        raise TaggerError("give --run DIR, or both --params P.npz and --config CFG.json")
    cfg = load_config(config)
    model = Tagger(cfg, params=load_npz(resolve_params_path(params)))
    return cfg, model.to(device)

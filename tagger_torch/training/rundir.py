"""A training run's directory: its files, the checkpoint (and its older forms), a trained model back.

DIR/config.json   the run's config (`model` names the model; Tagger's fields are the release's names)
DIR/run.json      data path, --load-from, device, precision, compile, processes, start time
DIR/params.npz    the parameters by name, float32 (the release's format for Tagger)
                  (a published run, results/NAME/, holds them as float16 in params-fp16.npz instead)
DIR/checkpoint.pt everything needed to continue exactly: model, optimizer, RNG state, epoch, step
DIR/metrics.jsonl one JSON line per finished epoch; DIR/curves.png their plot
Every file is written atomically (tagger_torch.files.atomic_output).
"""
from __future__ import annotations

import datetime
import json
import os
from typing import Optional, Tuple

import torch

from ..config import RunConfig, load_config
from ..errors import TaggerError
from ..files import atomic_write, ensure_writable_dir, save_npz, write_text
from ..inputs import read_params
from ..models import build_model

CONFIG, RUN, PARAMS, CHECKPOINT, METRICS, CURVES = ("config.json", "run.json", "params.npz", "checkpoint.pt",
                                                    "metrics.jsonl", "curves.png")
PARAMS_FP16 = "params-fp16.npz"  # a published run's parameters, stored as float16 (tagger_torch.publish)
# 1: written before the model registry (no "format" key); 2: this form. Both resume.
CHECKPOINT_FORMAT = 2
# keys every form holds; later ones were added with defaults (see `load_checkpoint`)
_REQUIRED = ("model", "optimizer", "generator", "epoch", "step", "order", "accumulator", "n_train")
_CPU_GENERATOR_STATE_BYTES = 5056  # torch's CPU (mt19937) generator state; CUDA's (Philox) is 16


def prepare_run_dir(out: str, resume: bool) -> None:
    """Create DIR (or check it for --resume) and make sure it is writable."""
    if resume:
        if not os.path.isfile(os.path.join(out, CHECKPOINT)):
            raise TaggerError(f"nothing to resume: {os.path.join(out, CHECKPOINT)} does not exist")
    elif os.path.exists(os.path.join(out, CHECKPOINT)):
        raise TaggerError(f"{out} already holds a run; continue it with --resume {out} or choose another --out")
    ensure_writable_dir(out, "the run directory ")


def write_run_files(out: str, config: RunConfig, **facts) -> None:
    """DIR/config.json and DIR/run.json (`facts` and the start time) of a new run."""
    write_text(os.path.join(out, CONFIG), config.to_json() + "\n")
    facts["started"] = datetime.datetime.now().isoformat(timespec="seconds")
    write_text(os.path.join(out, RUN), json.dumps(facts, indent=2) + "\n")


def write_metrics(path: str, rows: list) -> None:
    """DIR/metrics.jsonl, one JSON line per finished epoch (rewritten whole, atomically)."""
    write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_metrics(path: str) -> list:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def last_validated(rows: list) -> dict:
    """The last metrics row that holds a validation (`train --validate-every` thins them out); {} if none."""
    return next((row for row in reversed(rows) if any(key.startswith("valid_") for key in row)), {})


def save_params(path: str, model: torch.nn.Module) -> None:
    """DIR/params.npz: the model's parameters by name, float32, as the release saved them."""
    params = {name: p.detach().cpu().float().numpy() for name, p in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_npz(tmp, params))


def save_checkpoint(path: str, state: dict) -> None:
    """Write the training state (tensors and plain Python values only) atomically."""
    atomic_write(path, lambda tmp: torch.save({**state, "format": CHECKPOINT_FORMAT}, tmp))


def load_checkpoint(path: str) -> dict:
    """The training state of `path`, in this version's form; an older form is brought up to date.

    Keys added after the first form default to what the run used before they existed: precision
    fp32, no compile, one process, Adam's foreach form, and the device of the noise generator's state.
    """
    if not os.path.exists(path):
        raise TaggerError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: torch raises several types
        raise TaggerError(f"cannot read checkpoint {path}: {e}") from None
    run = os.path.dirname(os.path.abspath(path))
    missing = [key for key in _REQUIRED if not isinstance(state, dict) or key not in state]
    if missing:
        raise TaggerError(f"{path} is not a training checkpoint of tagger-torch (it lacks {', '.join(missing)}); "
                          f"start a new run from its parameters: tagger-torch train --load-from {run} --out NEW_DIR")
    if state.get("format", 1) > CHECKPOINT_FORMAT:
        raise TaggerError(f"{path} was written by a newer tagger-torch (checkpoint format {state['format']}); "
                          "resume it with that version")
    if "device_type" not in state:
        state["device_type"] = "cpu" if state["generator"].numel() == _CPU_GENERATOR_STATE_BYTES else "cuda"
    for key, default in (("precision", "fp32"), ("compile", False), ("world_size", 1), ("generators", None),
                         ("accumulators", None), ("fused_adam", False)):
        state.setdefault(key, default)
    state["format"] = CHECKPOINT_FORMAT
    return state


def run_params_path(run: str) -> Optional[str]:
    """The parameter file of a run directory: params.npz, else a published run's params-fp16.npz;
    None when it has neither."""
    for name in (PARAMS, PARAMS_FP16):
        if os.path.isfile(os.path.join(run, name)):
            return os.path.join(run, name)
    return None


def resolve_params_path(load_from: str) -> str:
    """A run directory (its params.npz or params-fp16.npz) or an .npz file (any float dtype: loading
    casts to the model's)."""
    path = run_params_path(load_from) if os.path.isdir(load_from) else load_from
    if path is None:
        raise TaggerError(f"no parameter file in {load_from} (neither {PARAMS} nor {PARAMS_FP16})")
    if not os.path.isfile(path):
        raise TaggerError(f"no parameter file at {path}")
    return path


def load_model(run: Optional[str] = None, params: Optional[str] = None, config: Optional[str] = None,
               device: torch.device = torch.device("cpu")) -> Tuple[RunConfig, torch.nn.Module]:
    """A trained model from a run directory (`run`) or from a parameter file and its config JSON."""
    if run is not None:
        if params is not None or config is not None:
            raise TaggerError("give either --run DIR or --params P.npz with --config CFG.json, not both")
        if not os.path.isdir(run):
            raise TaggerError(f"run directory not found: {run}")
        params, config = run, os.path.join(run, CONFIG)
    elif params is None or config is None:
        raise TaggerError("give --run DIR, or both --params P.npz and --config CFG.json")
    cfg = load_config(config)
    model = build_model(cfg, params=read_params(resolve_params_path(params)))
    return cfg, model.to(device)

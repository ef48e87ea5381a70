"""A run's float16 snapshot: enough of a run directory to continue the run on another machine.

The checkpoint (rundir.CHECKPOINT: float32 parameters and Adam's two moments, 12 bytes a parameter)
stays on the machine that trains, and is lost with it. A snapshot is small enough to commit (2 bytes a
parameter): `tagger-torch reproduce` writes one into results/progress/NAME/ after every epoch, so a
machine taken back loses only the epochs since the snapshot last committed.

    FOLDER/config.json      the run's config
    FOLDER/run.json         the run's facts (rundir.RUN); "restarts" lists each remaking from a snapshot
    FOLDER/metrics.jsonl    its metrics lines up to the snapshot's epoch
    FOLDER/params-fp16.npz  its parameters after that epoch, float16 (in parts, as shipped weights are)
    FOLDER/resume.json      written last: the epoch, the noise generator's state, the sha256 of the
                            float16 parameters, and the settings the run continues with

`restore_snapshot` remakes a run directory from it, whose checkpoint continues after that epoch. The
continued run is not bitwise the uninterrupted one: its parameters were rounded to float16 (for normal
values a relative change of at most 2^-11), and Adam starts again, its moments at zero and its step
count at 1. run.json's "restarts" records the epoch of each restart.
"""
from __future__ import annotations

import base64
import datetime
import json
import os
from typing import Optional

import numpy as np
import torch

from ..errors import TaggerError
from ..files import atomic_write, read_json, read_npz_parts, save_npz, save_npz_parts, write_text
from ..float16 import PART_BYTES, params_digest, to_float16
from .rundir import (CHECKPOINT, CONFIG, METRICS, PARAMS, RUN, load_checkpoint, read_metrics, save_checkpoint,
                     write_metrics)

SNAPSHOT_PARAMS, RESUME = "params-fp16.npz", "resume.json"
# the checkpoint's settings a snapshot keeps (Trainer resumes with them)
_SETTINGS = ("n_train", "device_type", "precision", "compile", "fused_adam")


def _copy_text(src: str, dst: str) -> None:
    with open(src, encoding="utf-8") as f:
        write_text(dst, f.read())


def has_snapshot(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, RESUME))


def write_snapshot(run: str, folder: str) -> Optional[int]:
    """Write the snapshot of run directory `run` after its last finished epoch into `folder`; returns
    that epoch, or None (nothing written) when the checkpoint stands within an epoch or holds several
    processes' noise generators (torchrun)."""
    state = load_checkpoint(os.path.join(run, CHECKPOINT))
    if state["step"] != 0 or state["world_size"] != 1:
        return None
    half, _ = to_float16({name: value.numpy() for name, value in state["model"].items()})
    resume = {"epoch": state["epoch"], **{key: state[key] for key in _SETTINGS},
              "generator": base64.b64encode(state["generator"].numpy().tobytes()).decode("ascii"),
              "params_sha256": params_digest(half)}
    if read_json(os.path.join(folder, RESUME)) == resume:  # this snapshot is there (its files' bytes stay)
        return state["epoch"]
    os.makedirs(folder, exist_ok=True)
    save_npz_parts(os.path.join(folder, SNAPSHOT_PARAMS), half, PART_BYTES)
    for name in (CONFIG, RUN):
        _copy_text(os.path.join(run, name), os.path.join(folder, name))
    write_metrics(os.path.join(folder, METRICS),
                  [row for row in read_metrics(os.path.join(run, METRICS)) if row["epoch"] <= state["epoch"]])
    write_text(os.path.join(folder, RESUME), json.dumps(resume, indent=2) + "\n")
    return state["epoch"]


def restore_snapshot(folder: str, run: str) -> int:
    """Remake run directory `run` from the snapshot in `folder`: config.json, run.json (this restart
    added to "restarts"), metrics.jsonl, params.npz and a checkpoint that continues after the snapshot's
    epoch with a fresh Adam (module docstring). Returns that epoch; TaggerError for a snapshot whose
    parameters are not the ones resume.json names (a write cut short)."""
    resume = read_json(os.path.join(folder, RESUME))
    if resume is None:
        raise TaggerError(f"no snapshot in {folder} (it has no {RESUME})")
    half = read_npz_parts(os.path.join(folder, SNAPSHOT_PARAMS), "snapshot parameter")
    if params_digest(half) != resume["params_sha256"]:
        raise TaggerError(f"the snapshot in {folder} is inconsistent: its parameters are not those of epoch "
                          f"{resume['epoch']} (a write cut short); restore the committed snapshot "
                          f"(git checkout -- {folder}) and run again")
    os.makedirs(run, exist_ok=True)
    _copy_text(os.path.join(folder, CONFIG), os.path.join(run, CONFIG))
    facts = read_json(os.path.join(folder, RUN)) or {}
    facts["restarts"] = facts.get("restarts", []) + [
        {"epoch": resume["epoch"], "from": os.path.abspath(folder),
         "at": datetime.datetime.now().isoformat(timespec="seconds")}]
    write_text(os.path.join(run, RUN), json.dumps(facts, indent=2) + "\n")
    write_metrics(os.path.join(run, METRICS),
                  [row for row in read_metrics(os.path.join(folder, METRICS)) if row["epoch"] <= resume["epoch"]])
    params = {name: value.astype(np.float32) for name, value in half.items()}
    atomic_write(os.path.join(run, PARAMS), lambda tmp: save_npz(tmp, params))
    generator = np.frombuffer(base64.b64decode(resume["generator"]), dtype=np.uint8).copy()
    save_checkpoint(os.path.join(run, CHECKPOINT), {
        "model": {name: torch.from_numpy(value) for name, value in params.items()},
        "optimizer": None,  # Adam starts again (Trainer._restore)
        "generator": torch.from_numpy(generator), "epoch": resume["epoch"], "step": 0, "order": None,
        "accumulator": None, "config": read_json(os.path.join(folder, CONFIG)), "hdf5": facts.get("hdf5"),
        "world_size": 1, "generators": None, "accumulators": None,
        **{key: resume[key] for key in _SETTINGS}})
    return resume["epoch"]

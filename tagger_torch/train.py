"""`tagger-torch train`: the release's training protocol (SPEC 7) with exact resume.

Protocol (release `tagger_exp.py`, `data.py`, `tagger.py`):
* the training cost is the mean over iterations of the denoising cost of the corrupted unlabelled
  batch, plus `class_cost_x` times the last iteration's classification cost of a corrupted
  *labelled* batch, which is a separate forward pass (its own BatchNorm statistics);
* the release's Adam (`BlocksAdam`), constant lr, batches of `batch_size`, a new shuffle each epoch;
* the labelled examples: the train split's indices shuffled by RandomState(seed); with fewer labels
  than examples, the first labeled_samples/n_classes of each class (by the first target column) in
  that order; every train example is also in the unlabelled stream. The labelled stream restarts
  with a fresh shuffle at each epoch and cycles while the unlabelled stream makes the epoch;
* after each epoch, the validation split's denoising cost on the corrupted path (what the release
  monitored), plus classification cost and clean-path error when the model classifies.

Determinism: every draw comes from explicit generators seeded from `seed`: the weights (numpy, the
release's order), the data order (numpy, one generator per epoch and stream), the corruption and m0
draws (one torch.Generator, saved in the checkpoint), validation (a torch.Generator per epoch).
So a run stopped at any step (SIGINT/SIGTERM) and resumed gives bitwise the parameters of an
uninterrupted run on CPU.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import click
import numpy as np
import torch

from . import checkpoint as ckpt
from .config import PRESETS, TaggerConfig, from_dict, get_preset, load_config
from .errors import TaggerError

LOG_EVERY = 10  # steps between progress-bar updates (and the NaN check, which syncs the device)


# ----------------------------------------------------------------------------------------------
# Configuration and data
# ----------------------------------------------------------------------------------------------
def preset_for_data(info) -> str:
    """The release runner that matches a data file (used when neither --preset nor --config is given)."""
    D = int(np.prod(info.in_dim))
    if info.input_type == "binary" and D == 400:
        return "shapes50k20x20"
    if info.input_type == "continuous" and D == 784:
        return f"freq20-{2 if info.objects_per_sample == 2 else 1}mnist-pretrain"
    raise TaggerError(f"no preset matches {info.path} ({info.input_type} inputs of shape {info.in_dim}); "
                      f"give --preset or --config (presets: {', '.join(PRESETS)})")


def resolve_config(info, preset: Optional[str] = None, config_path: Optional[str] = None,
                   **overrides) -> TaggerConfig:
    """Preset (named, or the one matching the data), then the config file's fields, then the flags."""
    if preset is not None:
        base = get_preset(preset)
    elif config_path is None:
        base = get_preset(preset_for_data(info))
    else:
        base = None
    config = load_config(config_path, base) if config_path is not None else base
    return config.replace(**overrides)


def check_config_fits_data(config: TaggerConfig, info) -> None:
    """The data's input size and type, and its labels when the model classifies, must fit the config."""
    D = int(np.prod(info.in_dim))
    if D != config.input_size:
        raise TaggerError(f"the config's in_dim {list(config.in_dim)} (D={config.input_size}) does not match "
                          f"the inputs of {info.path}: {list(info.in_dim)} (D={D})")
    if config.input_type == "binary" and info.input_type != "binary":
        raise TaggerError(f"the config says input_type 'binary' but {info.path} holds values other than 0 and 1")
    if "train" not in info.splits:
        raise TaggerError(f"{info.path} has no 'train' split")
    if config.class_cost_x > 0:
        if not info.has_labels:
            raise TaggerError(f"the config classifies (class_cost_x={config.class_cost_x}) but {info.path} "
                              "has no labels ('targets')")
        if info.objects_per_sample < config.objects_per_sample:
            raise TaggerError(f"the config has objects_per_sample={config.objects_per_sample} but the targets "
                              f"of {info.path} have {info.objects_per_sample} column(s)")


def labelled_indices(targets: np.ndarray, seed: int, labeled_samples: Optional[int],
                     batch_size: int) -> np.ndarray:
    """The labelled train examples, as the release's `data.setup_data` picks them.

    targets: (N, objects) the train split's labels. The train indices are shuffled by
    RandomState(seed); with all labels (None, 0 or >= N) they are the labelled set in that order;
    else the first labeled_samples/n_classes indices of each class, by the first target column,
    with n_classes = max label + 1 as in the release.
    """
    n = targets.shape[0]
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    n_labelled = n if not labeled_samples or labeled_samples >= n else labeled_samples
    if n_labelled < batch_size:
        raise TaggerError(f"labeled_samples={n_labelled} is smaller than batch_size={batch_size}")
    if n_labelled == n:
        return order
    n_classes = int(targets.max()) + 1
    if n_labelled % n_classes:
        raise TaggerError(f"labeled_samples={n_labelled} must be a multiple of the {n_classes} classes "
                          "(the labelled set is class-balanced)")
    first_column = targets.reshape(n, -1)[order, 0]
    per_class = n_labelled // n_classes
    picked = []
    for c in range(n_classes):
        of_class = order[first_column == c][:per_class]
        if len(of_class) < per_class:
            raise TaggerError(f"class {c} has only {len(of_class)} train examples; {per_class} are needed")
        picked.append(of_class)
    return np.concatenate(picked)


def stream_order(seed: int, epoch: int, n: int, stream: int = 0, cycle: int = 0) -> np.ndarray:
    """The shuffle of `n` examples for (epoch, stream, cycle): 0 = unlabelled, 1 = labelled stream."""
    return np.random.default_rng([seed, stream, epoch, cycle]).permutation(n)


@dataclass
class TrainData:
    """One run's examples on the device, indexed per step (no per-batch host work)."""

    x: torch.Tensor  # (N, D) float32, the train split
    x_valid: Optional[torch.Tensor]  # (Nv, D) or None
    labelled: Optional[torch.Tensor]  # (NL,) long, indices into x of the labelled examples
    y: Optional[torch.Tensor]  # (N, objects) long, the train labels (classifying configs only)
    y_valid: Optional[torch.Tensor]


def load_train_data(path: str, info, config: TaggerConfig, device: torch.device) -> TrainData:
    from .data import load_split

    classify = config.class_cost_x > 0
    D = config.input_size

    def load(split):
        sources = ("features", "targets") if classify else ("features",)
        arrays = load_split(path, split, sources)
        x = torch.from_numpy(np.ascontiguousarray(arrays["features"], dtype=np.float32).reshape(-1, D))
        y = None
        if classify:
            y = torch.from_numpy(arrays["targets"].astype(np.int64).reshape(len(x), -1))
            y = y[:, :config.objects_per_sample]
            if int(y.max()) >= config.n_classes or int(y.min()) < 0:
                raise TaggerError(f"the {split} labels of {path} lie in [{int(y.min())}, {int(y.max())}] but "
                                  f"the model has {config.n_classes} classes")
        return x, y

    x, y = load("train")
    labelled = None
    if classify:
        labelled = torch.from_numpy(labelled_indices(y.numpy(), config.seed, config.labeled_samples,
                                                     config.batch_size))
    x_valid = y_valid = None
    if "valid" in info.splits:
        x_valid, y_valid = load("valid")
    to = lambda t: None if t is None else t.to(device)  # noqa: E731
    return TrainData(to(x), to(x_valid), to(labelled), to(y), to(y_valid))


# ----------------------------------------------------------------------------------------------
# One step
# ----------------------------------------------------------------------------------------------
def train_step(model, optimizer, x: torch.Tensor, x_labelled: Optional[torch.Tensor],
               labels: Optional[torch.Tensor], generator: torch.Generator, class_cost_x: float) -> Dict:
    """One release training step: cost, backward, Adam update. Returns detached statistics.

    x: (B, D) unlabelled batch; x_labelled (B', D) and labels (B', objects) the labelled batch, used
    only when class_cost_x > 0. Both passes are corrupted with draws from `generator`.
    cost = mean_i C_i(x) [eq. 1, SPEC 6] + class_cost_x * class_cost_T(x_labelled).
    """
    optimizer.zero_grad(set_to_none=True)
    out = model(x, corrupt=True, generator=generator)
    cost = out.denoising_cost.mean()  # SPEC 6: averaged over iterations
    stats = {"denoising_cost": out.denoising_cost.detach()}
    if class_cost_x > 0:
        labelled = model(x_labelled, corrupt=True, generator=generator, labels=labels)
        cost = cost + class_cost_x * labelled.class_cost[-1]  # the last iteration's class cost
        stats["class_cost"] = labelled.class_cost[-1].detach()
        stats["class_error"] = labelled.class_error[-1].detach()
    cost.backward()
    optimizer.step()
    stats["cost"] = cost.detach()
    return stats


def make_train_step(model, optimizer, config: TaggerConfig, precision: str = "fp32",
                    compile: bool = False) -> Callable:
    """step(x, x_labelled, labels, generator) -> stats: `train_step` under a precision policy.

    precision: 'fp32' (the parity-tested path), or 'bf16'/'tf32' (tagger_torch.precision);
    compile: torch.compile the model (forward and, through AOTAutograd, backward; the noise draws
    stay eager at graph breaks, so a compiled step draws what an eager one does). Under torchrun the
    model runs inside DistributedDataParallel, which averages the gradients over the ranks.
    """
    from .distributed import wrap
    from .precision import autocast

    device = next(model.parameters()).device
    forward_model = wrap(model)
    if compile:
        forward_model = torch.compile(forward_model)

    def step(x, x_labelled, labels, generator):
        with autocast(precision, device):
            return train_step(forward_model, optimizer, x, x_labelled, labels, generator, config.class_cost_x)

    return step


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
class StopSignals:
    """Turn SIGINT/SIGTERM into a flag the loop checks after each step (main thread only).

    A second signal aborts at once (KeyboardInterrupt) without writing: the last checkpoint stays.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class Accumulator:
    """Sums of the per-step statistics of one epoch, on the device (no sync per step)."""

    def __init__(self, state: Optional[dict] = None):
        self.sums: Dict[str, torch.Tensor] = dict(state["sums"]) if state else {}
        self.steps = state["steps"] if state else 0
        self.seconds = state["seconds"] if state else 0.0

    def add(self, stats: Dict[str, torch.Tensor]):
        for key, value in stats.items():
            value = value.float()
            if key in self.sums:
                self.sums[key] = self.sums[key].to(value.device) + value
            else:
                self.sums[key] = value.clone()
        self.steps += 1

    def means(self) -> Dict[str, object]:
        """Epoch means: floats, or lists (one per iteration) for per-iteration statistics."""
        return {key: (value / max(self.steps, 1)).cpu().tolist() for key, value in self.sums.items()}

    def finite(self) -> bool:
        return all(bool(torch.isfinite(v).all()) for v in self.sums.values())

    def state(self) -> dict:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "steps": self.steps,
                "seconds": self.seconds}


class NonFiniteCost(TaggerError):
    pass


def prepare_run_dir(out: str, resume: bool) -> None:
    """Create DIR (or check it for --resume) and make sure it is writable."""
    if resume:
        if not os.path.isfile(os.path.join(out, ckpt.CHECKPOINT)):
            raise TaggerError(f"nothing to resume: {os.path.join(out, ckpt.CHECKPOINT)} does not exist")
    elif os.path.exists(os.path.join(out, ckpt.CHECKPOINT)):
        raise TaggerError(f"{out} already holds a run; continue it with --resume {out} or choose another --out")
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise TaggerError(f"cannot write to the run directory {out}: {e.strerror or e}") from None


def write_metrics(path: str, rows: list) -> None:
    """DIR/metrics.jsonl, one JSON line per finished epoch (rewritten whole, atomically)."""
    ckpt.write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_metrics(path: str) -> list:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


class Trainer:
    """One training run in a run directory: set-up, epochs, checkpoints (see the module docstring)."""

    def __init__(self, config: TaggerConfig, hdf5: str, out: str, device: torch.device, *,
                 load_from: Optional[str] = None, resume: bool = False, precision: str = "auto",
                 compile: Optional[bool] = None, echo: Callable[[str], None] = click.echo):
        """precision: auto|fp32|bf16|tf32 (auto: fp32, see precision.resolve_precision; when
        resuming, the run's own); compile: torch.compile the step
        (None: when the run ahead is long enough to repay compiling; when resuming, the run's own).
        Under torchrun each rank trains its own batches (distributed.py); rank 0 writes the files."""
        from . import distributed
        from .bench import model_flop_per_step
        from .data import dataset_info
        from .model import Tagger
        from .optim import BlocksAdam
        from .params import load_npz

        self.rank, self.world = distributed.rank(), distributed.world_size()
        if self.rank == 0:
            prepare_run_dir(out, resume)
        distributed.barrier()
        state = ckpt.load_checkpoint(os.path.join(out, ckpt.CHECKPOINT)) if resume else None
        info = dataset_info(hdf5)
        check_config_fits_data(config, info)
        self.config, self.hdf5, self.out, self.device = config, hdf5, out, device
        self.echo = echo if self.rank == 0 else (lambda text: None)
        self.data = load_train_data(hdf5, info, config, device)
        self.n_train = self.data.x.shape[0]
        # each step trains `world` batches, one per rank
        self.n_batches = math.ceil(self.n_train / config.batch_size)
        self.steps_per_epoch = math.ceil(self.n_batches / self.world)

        self.model = Tagger(config, seed=config.seed).to(device)
        self.optimizer = BlocksAdam(self.model.parameters(), lr=config.lr)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(distributed.rank_seed(config.seed, self.rank))
        # position: `epoch` epochs done, `step` steps of the next one; `order` its shuffle
        self.epoch, self.step, self.order, self.acc = 0, 0, None, Accumulator()
        if state is not None:
            if state["n_train"] != self.n_train:
                raise TaggerError(f"the checkpoint was trained on {state['n_train']} examples but the train "
                                  f"split of {hdf5} has {self.n_train}")
            if state["device_type"] != device.type:
                raise TaggerError(f"the checkpoint in {out} was written on {state['device_type']}; resume it on "
                                  f"the same kind of device (--device {state['device_type']}): the noise "
                                  "generator's state is device-specific")
            if state.get("world_size", 1) != self.world:
                raise TaggerError(f"the checkpoint in {out} was written by {state.get('world_size', 1)} "
                                  f"process(es); resume it with as many (this job has {self.world})")
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generators"][self.rank] if self.world > 1 else state["generator"])
            precision = state.get("precision", "fp32") if precision in (None, "auto") else precision
            compile = state.get("compile", False) if compile is None else compile
            self.epoch, self.step = state["epoch"], state["step"]
            self.order = None if state["order"] is None else state["order"].numpy()
            self.acc = Accumulator(state["accumulators"][self.rank] if self.world > 1 else state["accumulator"])
        else:
            if load_from is not None:
                loaded = self.model.load_params(load_npz(ckpt.resolve_params_path(load_from)), subset=True)
                self.echo(f"loaded {len(loaded)} of {len(self.model.shapes)} parameters from {load_from}")
        from .precision import default_compile, resolve_precision, warn_if_slow

        gflop_per_step = model_flop_per_step(config, config.batch_size) / 1e9
        self.precision = resolve_precision(precision, device)
        if self.rank == 0:
            warn_if_slow(self.precision, device)
        if compile is None:
            steps_ahead = config.num_epochs * self.steps_per_epoch - (self.epoch * self.steps_per_epoch + self.step)
            compile = default_compile(steps_ahead * gflop_per_step)
        self.compile = bool(compile)
        if state is None and self.rank == 0:
            ckpt.write_text(os.path.join(out, ckpt.CONFIG), config.to_json() + "\n")
            ckpt.write_text(os.path.join(out, "run.json"), json.dumps(
                {"hdf5": os.path.abspath(hdf5), "load_from": load_from, "device": str(device),
                 "precision": self.precision, "compile": self.compile, "world_size": self.world,
                 "started": datetime.datetime.now().isoformat(timespec="seconds")}, indent=2) + "\n")
        self.step_fn = make_train_step(self.model, self.optimizer, config, precision=self.precision,
                                       compile=self.compile)
        self.echo(f"precision {self.precision}, {'compiled' if self.compile else 'eager'} step"
                  + (f", {self.world} processes" if self.world > 1 else ""))
        self.metrics_path = os.path.join(out, ckpt.METRICS)
        self.history = [r for r in read_metrics(self.metrics_path) if r["epoch"] <= self.epoch]
        self.last_good = self.epoch if state is not None else 0
        self._labelled = (-1, None)  # (cycle, that cycle's shuffled labelled indices)

    def save_state(self) -> None:
        """Write the checkpoint (rank 0; under torchrun every rank must call it: it gathers the
        ranks' noise generators and epoch statistics)."""
        from .distributed import gather

        generators = gather(self.generator.get_state())
        accumulators = gather(self.acc.state())
        if self.rank != 0:
            return
        ckpt.save_checkpoint(os.path.join(self.out, ckpt.CHECKPOINT), {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(), "epoch": self.epoch, "step": self.step,
            "order": None if self.order is None else torch.from_numpy(self.order),
            "accumulator": self.acc.state(), "n_train": self.n_train, "config": self.config.to_dict(),
            "hdf5": os.path.abspath(self.hdf5), "device_type": self.device.type,
            "precision": self.precision, "compile": self.compile, "world_size": self.world,
            "generators": generators if self.world > 1 else None,
            "accumulators": accumulators if self.world > 1 else None})

    def labelled_batch(self):
        """The labelled batch of the current step: the labelled stream cycles through the epoch."""
        B, labelled = self.config.batch_size, self.data.labelled
        cycle, j = divmod(self.step * self.world + self.rank, math.ceil(labelled.shape[0] / B))
        if cycle != self._labelled[0]:
            perm = stream_order(self.config.seed, self.epoch, labelled.shape[0], stream=1, cycle=cycle)
            self._labelled = (cycle, labelled[torch.from_numpy(perm).to(self.device)])
        idx = self._labelled[1][j * B:(j + 1) * B]
        return self.data.x[idx], self.data.y[idx]

    def check_finite(self, finite: Optional[bool] = None) -> None:
        """Stop with a clear message when the cost is NaN/inf; the last good checkpoint stays."""
        from .distributed import any_rank

        if any_rank(not (self.acc.finite() if finite is None else finite), self.device):
            kept = (f"{os.path.join(self.out, ckpt.CHECKPOINT)} still holds the state after epoch {self.last_good}"
                    if self.last_good > 0 else "no checkpoint was written")
            raise NonFiniteCost(f"the training cost became NaN or inf in epoch {self.epoch + 1} (by step "
                                f"{self.step}); training stopped and {kept} (try a smaller lr)")

    def train_epoch(self, should_stop: Callable[[], bool], progress: bool) -> bool:
        """Steps until the epoch ends (True) or should_stop() says so after a step (False)."""
        from tqdm import tqdm

        B = self.config.batch_size
        if self.order is None:
            self.order = stream_order(self.config.seed, self.epoch, self.n_train)
        order = torch.from_numpy(self.order).to(self.device)
        self._labelled = (-1, None)
        bar = tqdm(total=self.steps_per_epoch, initial=self.step, unit="step", leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.config.num_epochs}", disable=not progress)
        started = time.perf_counter()
        try:
            while self.step < self.steps_per_epoch:
                j = (self.step * self.world + self.rank) % self.n_batches  # this rank's batch
                x = self.data.x[order[j * B:(j + 1) * B]]  # (B, D)
                x_lab, y_lab = self.labelled_batch() if self.data.labelled is not None else (None, None)
                self.acc.add(self.step_fn(x, x_lab, y_lab, self.generator))
                self.step += 1
                bar.update(1)
                stopping = should_stop()
                if self.step % LOG_EVERY == 0 or self.step == self.steps_per_epoch or stopping:
                    self.check_finite()  # syncs the device, so only now and then
                    bar.set_postfix(cost=f"{float(self.acc.sums['cost']) / self.acc.steps:.4f}")
                if stopping and self.step < self.steps_per_epoch:
                    return False
            return True
        finally:
            self.acc.seconds += time.perf_counter() - started
            bar.close()

    def end_epoch(self) -> dict:
        """Validation, then the metrics line, params.npz, the checkpoint and the curves."""
        from .distributed import mean_over_ranks
        from .evaluate import evaluate_split
        from .precision import autocast
        from .visualize import plot_curves

        self.acc.sums = {key: mean_over_ranks(value) for key, value in self.acc.sums.items()}
        train = self.acc.means()
        row = {"epoch": self.epoch + 1, "steps": (self.epoch + 1) * self.steps_per_epoch,
               "train_cost": train["cost"], "train_denoising_cost": train["denoising_cost"]}
        row.update({f"train_{key}": train[key] for key in ("class_cost", "class_error") if key in train})
        row["train_time_s"] = round(self.acc.seconds, 3)
        row["samples_per_s"] = round(self.n_train / self.acc.seconds, 1) if self.acc.seconds > 0 else None
        row.update(precision=self.precision, compiled=self.compile, world_size=self.world)
        if self.data.x_valid is not None:
            started = time.perf_counter()
            generator = torch.Generator(device=self.device)  # its own draws: training's stay untouched
            generator.manual_seed(int(np.random.SeedSequence([self.config.seed, 2, self.epoch]).generate_state(1)[0]))
            with autocast(self.precision, self.device):
                valid = evaluate_split(self.model, self.data.x_valid, labels=self.data.y_valid,
                                       batch_size=self.config.valid_batch_size, generator=generator)
            row["valid_denoising_cost"] = valid["denoising_cost"]
            row.update({f"valid_{key}": valid[key] for key in ("class_cost", "class_error") if key in valid})
            row["valid_time_s"] = round(time.perf_counter() - started, 3)
            self.check_finite(bool(np.all(np.isfinite(valid["denoising_cost"]))))
        self.epoch, self.step, self.order, self.acc = self.epoch + 1, 0, None, Accumulator()
        self.history.append(row)
        if self.rank == 0:
            write_metrics(self.metrics_path, self.history)
            ckpt.save_params(os.path.join(self.out, ckpt.PARAMS), self.model)
        self.save_state()
        self.last_good = self.epoch
        if self.rank == 0:
            plot_curves(self.history, os.path.join(self.out, ckpt.CURVES))
        return row

    def run(self, max_steps: Optional[int] = None, progress: Optional[bool] = None) -> dict:
        """Train up to config.num_epochs; SIGINT/SIGTERM (or max_steps steps of this call) save and stop.

        Returns {"epochs_done", "stopped", "signal", "last": the last metrics row or None}.
        """
        from .distributed import any_rank

        config = self.config
        if self.epoch >= config.num_epochs:
            self.echo(f"{self.out} has already trained {self.epoch} of {config.num_epochs} epochs; nothing to do")
        progress = os.isatty(2) if progress is None else progress
        start_steps = self.epoch * self.steps_per_epoch + self.step
        with StopSignals() as stop:
            def should_stop():  # every rank stops after the same step (a collective under torchrun)
                done = self.epoch * self.steps_per_epoch + self.step - start_steps
                return any_rank(stop.signum is not None or (max_steps is not None and done >= max_steps),
                                self.device)

            while self.epoch < config.num_epochs:
                if self.train_epoch(should_stop, progress):
                    self.echo(format_epoch(self.end_epoch(), config.num_epochs))
                else:
                    self.save_state()
                if should_stop() and self.epoch < config.num_epochs:
                    why = "after max_steps" if stop.signum is None else f"on {signal.Signals(stop.signum).name}"
                    where = (f"in epoch {self.epoch + 1} at step {self.step}/{self.steps_per_epoch}" if self.step
                             else f"after epoch {self.epoch}")
                    self.echo(f"stopped {why} {where}; continue with: tagger-torch train --resume {self.out}")
                    break
            stopped = self.epoch < config.num_epochs
            return {"epochs_done": self.epoch, "stopped": stopped, "signal": stop.signum,
                    "last": self.history[-1] if self.history else None}


def run_training(config: TaggerConfig, hdf5: str, out: str, device: torch.device, *,
                 load_from: Optional[str] = None, resume: bool = False, max_steps: Optional[int] = None,
                 precision: str = "auto", compile: Optional[bool] = None,
                 echo: Callable[[str], None] = click.echo, progress: Optional[bool] = None) -> dict:
    """Train `config` on `hdf5` into the run directory `out`; see `Trainer.run`.

    resume: continue from out/checkpoint.pt (config.num_epochs is the run's total). max_steps: stop
    as if interrupted after that many steps of this call. progress: tqdm bar (None: when stderr is a
    terminal). precision, compile: see `Trainer`.
    """
    trainer = Trainer(config, hdf5, out, device, load_from=load_from, resume=resume, precision=precision,
                      compile=compile, echo=echo)
    return trainer.run(max_steps=max_steps, progress=progress)


def format_epoch(row: dict, num_epochs: int) -> str:
    text = f"epoch {row['epoch']}/{num_epochs}: train cost {row['train_cost']:.5f}"
    if "valid_denoising_cost" in row:
        text += " | valid denoising cost per iteration " + " ".join(f"{c:.5f}" for c in row["valid_denoising_cost"])
    if "valid_class_error" in row:
        text += f" | valid class error {row['valid_class_error'][-1]:.2f}%"
    if row.get("samples_per_s"):
        text += f" | {row['train_time_s']:.1f} s, {row['samples_per_s']:.0f} samples/s"
    return text


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def _labeled_samples(value: Optional[str]):
    if value is None:
        return None
    if value == "all":
        return "all"
    try:
        n = int(value)
    except ValueError:
        raise TaggerError(f"--labeled-samples must be a positive integer or 'all' (got {value!r})") from None
    if n < 1:
        raise TaggerError(f"--labeled-samples must be a positive integer or 'all' (got {value!r})")
    return n


@click.command("train")
@click.option("--hdf5", "hdf5", type=str, help="Data file in the release's layout (optional with --resume).")
@click.option("--preset", type=str, help=f"Release runner to start from: {', '.join(PRESETS)}. "
              "Default: the one matching the data file.")
@click.option("--config", "config_path", type=str, help="Config JSON (release field names); overrides the preset.")
@click.option("--epochs", type=int, help="Total epochs of the run (num_epochs), also when resuming.")
@click.option("--out", type=str, help="Run directory (default runs/<preset>-<time>).")
@click.option("--seed", type=int, help="Seed of the weights, the data order and the noise.")
@click.option("--labeled-samples", type=str, help="Labelled train examples for classification: N or 'all'.")
@click.option("--load-from", type=str, help="Start from these parameters (a run directory or .npz), by name; "
              "names the model lacks are ignored, shapes are checked (stage 2).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--precision", type=click.Choice(("auto", "fp32", "bf16", "tf32")), default="auto", show_default=True,
              help="auto: fp32 (bf16 runs 1.9x faster on AVX-512-BF16 CPUs, ~20x slower on CPUs without "
              "native bf16, and is opt-in, docs/speed.md); with --resume: the run's own.")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="torch.compile the training step. Default: when the run ahead repays compiling "
              "(about a minute on CPU); with --resume: the run's own.")
@click.option("--resume", type=str, help="Continue the run in this directory from its checkpoint.")
@click.option("--max-steps", type=click.IntRange(1), hidden=True,
              help="Stop as if interrupted after this many steps (tests, demos).")
def train_command(hdf5, preset, config_path, epochs, out, seed, labeled_samples, load_from, device, precision,
                  compile_, resume, max_steps):
    """Train Tagger on an HDF5 data set with the release's protocol (SPEC 7).

    Under `torchrun --nproc-per-node N` each process trains its own batches with
    DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes the run directory."""
    from .distributed import exit_now, setup, teardown
    from .precision import resolve_device

    if epochs is not None and epochs < 1:
        raise TaggerError(f"--epochs must be >= 1 (got {epochs})")
    dev = setup(resolve_device(device))
    try:
        code = _train(hdf5, preset, config_path, epochs, out, seed, labeled_samples, load_from, dev, precision,
                      compile_, resume, max_steps)
    finally:
        left_job = teardown()
    if left_job:
        exit_now(code)
    if code:
        raise SystemExit(code)


def _train(hdf5, preset, config_path, epochs, out, seed, labeled_samples, load_from, dev, precision,
           compile_, resume, max_steps) -> int:
    """The train command inside the job; returns the exit status (128 + signal number after a signal)."""
    from .distributed import gather, is_main

    echo = click.echo if is_main() else (lambda text: None)
    if resume is not None:
        given = [flag for flag, value in (("--preset", preset), ("--config", config_path), ("--seed", seed),
                                          ("--labeled-samples", labeled_samples), ("--load-from", load_from),
                                          ("--out", out)) if value is not None]
        if given:
            raise TaggerError(f"{', '.join(given)} cannot be combined with --resume (the run keeps its config)")
        if is_main():  # one probe of the directory; Trainer checks it again on rank 0
            prepare_run_dir(resume, resume=True)
        config = load_config(os.path.join(resume, ckpt.CONFIG)).replace(num_epochs=epochs)
        state_hdf5 = ckpt.load_checkpoint(os.path.join(resume, ckpt.CHECKPOINT)).get("hdf5")
        hdf5 = hdf5 or state_hdf5
        out = resume
    else:
        if hdf5 is None:
            raise TaggerError("--hdf5 PATH is required (the data to train on)")
        from .data import dataset_info

        info = dataset_info(hdf5)
        n_labels = _labeled_samples(labeled_samples)
        overrides = dict(num_epochs=epochs, seed=seed)
        config = resolve_config(info, preset, config_path, **overrides)
        if n_labels is not None:
            config = from_dict({**config.to_dict(), "labeled_samples": None if n_labels == "all" else n_labels})
        if out is None:
            name = preset or (os.path.splitext(os.path.basename(config_path))[0] if config_path else preset_for_data(info))
            out = os.path.join("runs", f"{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
            out = gather(out)[0]  # under torchrun: rank 0's name (the ranks' clocks may differ by a second)
        if load_from is not None:
            ckpt.resolve_params_path(load_from)  # fail before any work
    echo(f"training into {out} on {dev}")
    result = run_training(config, hdf5, out, dev, load_from=load_from, resume=resume is not None,
                          max_steps=max_steps, precision=precision, compile=compile_, echo=echo)
    if result["stopped"]:
        return 128 + result["signal"] if result["signal"] else 0
    echo(f"done: {result['epochs_done']} epochs in {out} (params.npz, metrics.jsonl, curves.png)")
    return 0

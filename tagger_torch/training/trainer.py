"""The training loop for every model of the registry (SPEC 7: the release's protocol), with exact resume.

The Trainer knows no model: it builds `config.model` through the registry (tagger_torch.models),
feeds it the batches of `streams.Streams`, and asks it for its cost (`batch_cost`), its validation
scores (`evaluate`) and its FLOP count. Per epoch: steps with the release's Adam (`BlocksAdam`, at
the config's `lr_at(epoch)`), then the validation split's scores, then the metrics line, params.npz, the checkpoint
and the curves. Determinism: every draw comes from generators seeded by `seed`: the weights (the
model's own init), the data order (streams.py), the noise of training (one torch.Generator, saved in
the checkpoint) and of validation (a torch.Generator per epoch). So a run stopped at any step
(SIGINT/SIGTERM) and resumed gives bitwise the parameters of an uninterrupted run on CPU. Within an
epoch a checkpoint is also written every CHECKPOINT_EVERY_S seconds, so a kill -9 loses at most that.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable, Optional

import numpy as np
import torch
from tqdm import tqdm

from .. import distributed
from ..data import dataset_info, load_split
from ..errors import TaggerError
from ..inputs import read_params
from ..models import Split, build_model
from ..optim import BlocksAdam
from ..precision import autocast, default_compile, processor_name, resolve_precision, warn_if_slow
from ..visualize import plot_curves
from .rundir import (CHECKPOINT, CURVES, METRICS, PARAMS, load_checkpoint, prepare_run_dir, read_metrics,
                     resolve_params_path, save_checkpoint, save_params, write_metrics, write_run_files)
from .step import Accumulator, HostCopy, make_train_step
from .streams import Streams, load_train_data

# Steps between the progress bar's updates and the NaN checks within an epoch. Each copies the
# epoch's sums to the host without waiting for the device and checks the copy of the previous one;
# the end of an epoch, and a stop, check the sums themselves (the one wait for the device).
LOG_EVERY = 10
# Seconds between the checkpoints written within an epoch (at a LOG_EVERY step), so that a process
# killed without a signal it can catch (kill -9, a machine taken back) loses at most this much work.
CHECKPOINT_EVERY_S = 600.0
# Validation examples (the split's first) on which a grouping model's AMI and ARI are scored after
# each validation, when the data file has true masks: whether grouping emerges, seen while training.
VALID_GROUPING = 1000


def validates_after(epoch: int, num_epochs: int, validate_every: int) -> bool:
    """Whether epoch `epoch` (1-based) ends with a validation: every `validate_every`th epoch and the
    run's last. Validation draws from its own generator (`validation_generator`), so the parameters
    after any epoch are the same for every `validate_every`: only the monitoring changes."""
    return epoch % validate_every == 0 or epoch == num_epochs


def validation_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """The noise of the validation after epoch `epoch` (1-based) of a run seeded `seed`: its own
    draws, so training's stay untouched, and a publisher can recompute a logged validation."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(np.random.SeedSequence([seed, 2, epoch - 1]).generate_state(1)[0]))
    return generator


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


class NonFiniteCost(TaggerError):
    pass


class Trainer:
    """One training run in a run directory: set-up, epochs, checkpoints (see the module docstring)."""

    def __init__(self, config, hdf5: str, out: str, device: torch.device, *, load_from: Optional[str] = None,
                 resume: bool = False, precision: str = "auto", compile: Optional[bool] = None,
                 cuda_graphs: Optional[bool] = None, echo: Callable[[str], None] = print, info=None,
                 state: Optional[dict] = None, checkpoint_every_s: Optional[float] = CHECKPOINT_EVERY_S,
                 validate_every: int = 1, fused_adam: Optional[bool] = None,
                 valid_grouping: int = VALID_GROUPING):
        """precision: auto|fp32|bf16|tf32 (auto: fp32, see precision.resolve_precision; when
        resuming, the run's own); compile: torch.compile the step (None: when the run ahead is long
        enough to repay compiling; when resuming, the run's own); cuda_graphs: a compiled step's
        CUDA graphs (precision.compile_mode; None: on one CUDA device). info: the data file's DatasetInfo
        and state: the checkpoint, when the caller has read them already. checkpoint_every_s: seconds
        between the checkpoints written within an epoch (None: only at the end of each epoch and on a stop).
        validate_every: validate after every Nth epoch and after the last (`validates_after`).
        fused_adam: Adam's form (`BlocksAdam`; None: the run's own when resuming, else the fused form
        with a compiled step). The two forms round differently, so a run switched on resume is no longer
        bitwise the uninterrupted one; metrics lines record each epoch's form (`adam`).
        valid_grouping: score the grouping (`valid_ami`, `valid_ari`) on this many validation examples
        after each validation, for a model that groups and a file with true masks (0: never).
        Under torchrun each rank trains its own batches (distributed.py); rank 0 writes the files."""
        if validate_every < 1:
            raise TaggerError(f"validate_every must be >= 1 (got {validate_every})")
        if valid_grouping < 0:
            raise TaggerError(f"valid_grouping must be >= 0 (got {valid_grouping})")
        self.rank, self.world = distributed.rank(), distributed.world_size()
        if self.rank == 0:
            prepare_run_dir(out, resume)
        distributed.barrier()
        if resume and state is None:
            state = load_checkpoint(os.path.join(out, CHECKPOINT))
        info = dataset_info(hdf5) if info is None else info
        config.check_data(info)
        self.config, self.hdf5, self.out, self.device = config, hdf5, out, device
        self.echo = echo if self.rank == 0 else (lambda text: None)
        self.data = load_train_data(hdf5, info, config, device)
        # (N, G, ...) the true masks of the first `valid_grouping` validation examples, or None
        self.valid_masks = None
        if valid_grouping and config.grouping and self.data.valid is not None and "mask" in info.sources:
            self.valid_masks = load_split(hdf5, "valid", ("mask",), limit=valid_grouping)["mask"]
        self.streams = Streams(self.data, config.seed, config.batch_size, self.rank, self.world,
                               unlabelled="unlabelled" in config.training_streams)
        self.n_train, self.steps_per_epoch = self.streams.n_train, self.streams.steps_per_epoch

        self.model = build_model(config, seed=config.seed).to(device)
        self.optimizer = BlocksAdam(self.model.parameters(), lr=config.lr)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(distributed.rank_seed(config.seed, self.rank))
        # position: `epoch` epochs done, `step` steps of the next one; `order` its shuffle
        self.epoch, self.step, self.order, self.acc = 0, 0, None, Accumulator()
        if state is not None:
            self._restore(state)
            precision = state["precision"] if precision in (None, "auto") else precision
            compile = state["compile"] if compile is None else compile
        elif load_from is not None:
            loaded = self.model.load_params(read_params(resolve_params_path(load_from)), subset=True)
            self.echo(f"loaded {len(loaded)} of {len(self.model.shapes)} parameters from {load_from}")
        self.precision = resolve_precision(precision, device)
        if self.rank == 0:
            warn_if_slow(self.precision, device)
        if compile is None:
            steps_ahead = config.num_epochs * self.steps_per_epoch - (self.epoch * self.steps_per_epoch + self.step)
            compile = default_compile(steps_ahead * self.model.flop_per_step(config.batch_size) / 1e9)
        self.compile = bool(compile)
        # Adam's fused form goes with a compiled step; a resumed run keeps its own (they round differently)
        if fused_adam is None:
            fused_adam = state["fused_adam"] if state is not None else self.compile
        self.optimizer.fused = fused_adam
        if state is None and self.rank == 0:
            write_run_files(out, config, hdf5=os.path.abspath(hdf5), load_from=load_from, device=str(device),
                            precision=self.precision, compile=self.compile, world_size=self.world)
        self.step_fn = make_train_step(self.model, self.optimizer, precision=self.precision, compile=self.compile,
                                       cuda_graphs=cuda_graphs)
        self.echo(f"precision {self.precision}, {'compiled' if self.compile else 'eager'} step"
                  + (" (CUDA graphs)" if self.step_fn.cuda_graphs else "")
                  + f", {'fused' if self.optimizer.fused else 'foreach'} Adam"
                  + (f", {self.world} processes" if self.world > 1 else ""))
        self.metrics_path = os.path.join(out, METRICS)
        self.history = [r for r in read_metrics(self.metrics_path) if r["epoch"] <= self.epoch]
        self.last_good = (self.epoch, self.step)  # where the checkpoint on disk stands: (epochs done, steps)
        self.checkpoint_every_s, self.last_save = checkpoint_every_s, time.monotonic()
        self.validate_every = validate_every

    def _restore(self, state: dict) -> None:
        """Continue from a checkpoint (rundir.load_checkpoint's form), after checking it fits this job."""
        if state["n_train"] != self.n_train:
            raise TaggerError(f"the checkpoint was trained on {state['n_train']} examples but the train "
                              f"split of {self.hdf5} has {self.n_train}")
        if state["device_type"] != self.device.type:
            raise TaggerError(f"the checkpoint in {self.out} was written on {state['device_type']}; resume it on "
                              f"the same kind of device (--device {state['device_type']}): the noise "
                              "generator's state is device-specific")
        if state["world_size"] != self.world:
            raise TaggerError(f"the checkpoint in {self.out} was written by {state['world_size']} "
                              f"process(es); resume it with as many (this job has {self.world})")
        self.model.load_state_dict(state["model"])
        if state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        else:  # a run directory remade from a float16 snapshot (snapshot.restore_snapshot)
            self.echo("Adam starts again: the checkpoint holds no optimizer state")
        self.generator.set_state(state["generators"][self.rank] if self.world > 1 else state["generator"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.order = None if state["order"] is None else state["order"].numpy()
        self.acc = Accumulator(state["accumulators"][self.rank] if self.world > 1 else state["accumulator"])

    def save_state(self) -> None:
        """Write the checkpoint (rank 0; under torchrun every rank must call it: it gathers the
        ranks' noise generators and epoch statistics)."""
        generators = distributed.gather(self.generator.get_state())
        accumulators = distributed.gather(self.acc.state())
        self.last_good, self.last_save = (self.epoch, self.step), time.monotonic()
        if self.rank != 0:
            return
        save_checkpoint(os.path.join(self.out, CHECKPOINT), {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(), "epoch": self.epoch, "step": self.step,
            "order": None if self.order is None else torch.from_numpy(self.order),
            "accumulator": self.acc.state(), "n_train": self.n_train, "config": self.config.to_dict(),
            "hdf5": os.path.abspath(self.hdf5), "device_type": self.device.type,
            "precision": self.precision, "compile": self.compile, "fused_adam": self.optimizer.fused,
            "world_size": self.world,
            "generators": generators if self.world > 1 else None,
            "accumulators": accumulators if self.world > 1 else None})

    def checkpoint_due(self) -> bool:
        """Whether checkpoint_every_s has passed since the last checkpoint (on any rank: a collective)."""
        if self.checkpoint_every_s is None:
            return False
        return distributed.any_rank(time.monotonic() - self.last_save >= self.checkpoint_every_s)

    def check_finite(self, finite: Optional[bool] = None, step: Optional[int] = None) -> None:
        """Stop with a clear message when the cost is NaN/inf; the last good checkpoint stays.
        finite: the verdict on the sums up to `step` (default: the epoch's sums now, read off the device)."""
        if distributed.any_rank(not (self.acc.finite() if finite is None else finite)):
            epochs_done, steps = self.last_good
            where = f"in epoch {epochs_done + 1} at step {steps}" if steps else f"after epoch {epochs_done}"
            kept = (f"{os.path.join(self.out, CHECKPOINT)} still holds the state {where}"
                    if epochs_done or steps else "no checkpoint was written")
            raise NonFiniteCost(f"the training cost became NaN or inf in epoch {self.epoch + 1} (by step "
                                f"{self.step if step is None else step}); training stopped and {kept} "
                                "(try a smaller lr)")

    def check_posted(self, posted: Optional[tuple], bar) -> None:
        """The NaN check and the bar's cost of the sums `posted` LOG_EVERY steps ago: (step, steps
        summed, HostCopy of Accumulator.snapshot()), or None (every rank agrees: a collective)."""
        finite, cost = posted[2].values() if posted is not None else (1.0, None)
        self.check_finite(bool(finite), step=posted[0] if posted is not None else None)
        if cost is not None:
            bar.set_postfix(cost=f"{cost / posted[1]:.4f}")

    def train_epoch(self, should_stop: Callable[[], bool], progress: bool) -> bool:
        """Steps until the epoch ends (True) or should_stop() says so after a step (False)."""
        if self.step == 0:  # mid-epoch, the checkpoint's optimizer state holds the epoch's lr
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.lr_at(self.epoch)
        if self.order is None:
            self.order = self.streams.epoch_order(self.epoch)
        self.streams.start_epoch(self.epoch, self.order)
        bar = tqdm(total=self.steps_per_epoch, initial=self.step, unit="step", leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.config.num_epochs}", disable=not progress)
        started, posted = time.perf_counter(), None
        try:
            while self.step < self.steps_per_epoch:
                self.acc.add(self.step_fn(self.streams.batch(self.step), self.generator))
                self.step += 1
                bar.update(1)
                stopping = should_stop()
                if self.step == self.steps_per_epoch or stopping:
                    self.check_finite()  # waits for the device
                elif self.step % LOG_EVERY == 0:
                    self.check_posted(posted, bar)
                    posted = (self.step, self.acc.steps, HostCopy(self.acc.snapshot()))
                    if self.checkpoint_due():
                        now = time.perf_counter()  # the checkpoint holds the epoch's seconds so far
                        self.acc.seconds, started = self.acc.seconds + now - started, now
                        self.check_finite()
                        self.save_state()
                        if not progress:  # without a bar (a log file): where the epoch stands
                            per_step, left = self.acc.seconds / self.step, self.steps_per_epoch - self.step
                            self.echo(f"epoch {self.epoch + 1}/{self.config.num_epochs}: step {self.step} of "
                                      f"{self.steps_per_epoch} (checkpoint saved), {per_step:.2f} s a step, "
                                      f"about {left * per_step / 60:.0f} min to the epoch's end")
                if stopping and self.step < self.steps_per_epoch:
                    return False
            return True
        finally:
            self.acc.seconds += time.perf_counter() - started
            bar.close()

    def validate(self) -> dict:
        """The validation split's scores (`valid_*` of the metrics line), with the epoch's own noise."""
        started = time.perf_counter()
        generator = validation_generator(self.config.seed, self.epoch + 1, self.device)
        with autocast(self.precision, self.device):
            valid = self.model.evaluate(Split(self.data.valid.x, self.data.valid.labels),
                                        batch_size=self.config.valid_batch_size, generator=generator)
        row = {f"valid_{key}": value for key, value in valid.items()}
        if self.valid_masks is not None:
            # the grouping of the first examples, on the clean path (its corrupted pass's cost is dropped)
            n = len(self.valid_masks)
            with autocast(self.precision, self.device):
                grouping = self.model.evaluate(Split(self.data.valid.x[:n], None, self.valid_masks),
                                               batch_size=self.config.valid_batch_size, generator=generator)
            row.update(valid_ami=grouping["ami"], valid_ari=grouping["ari"], valid_grouping_examples=n)
        row["valid_time_s"] = round(time.perf_counter() - started, 3)
        self.check_finite(bool(np.all(np.isfinite(valid[self.model.monitor]))))
        return row

    def end_epoch(self) -> dict:
        """Validation, then the metrics line, params.npz, the checkpoint and the curves."""
        self.acc.sums = {key: distributed.mean_over_ranks(value) for key, value in self.acc.sums.items()}
        train = self.acc.means()
        row = {"epoch": self.epoch + 1, "steps": (self.epoch + 1) * self.steps_per_epoch,
               "train_cost": train.pop("cost")}
        row.update({f"train_{key}": value for key, value in train.items()})
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["train_time_s"] = round(self.acc.seconds, 3)
        row["samples_per_s"] = round(self.n_train / self.acc.seconds, 1) if self.acc.seconds > 0 else None
        row.update(precision=self.precision, compiled=self.compile, adam="fused" if self.optimizer.fused else "foreach",
                   world_size=self.world, device=self.device.type, processor=processor_name(self.device))
        if self.data.valid is not None and validates_after(self.epoch + 1, self.config.num_epochs, self.validate_every):
            row.update(self.validate())
        self.epoch, self.step, self.order, self.acc = self.epoch + 1, 0, None, Accumulator()
        self.history.append(row)
        if self.rank == 0:
            write_metrics(self.metrics_path, self.history)
            save_params(os.path.join(self.out, PARAMS), self.model)
        self.save_state()
        if self.rank == 0:
            plot_curves(self.history, os.path.join(self.out, CURVES))
        return row

    def run(self, max_steps: Optional[int] = None, progress: Optional[bool] = None,
            done: Optional[Callable[[list], bool]] = None) -> dict:
        """Train up to config.num_epochs; SIGINT/SIGTERM (or max_steps steps of this call) save and stop.
        done(metrics rows) -> True ends training after an epoch, before num_epochs (an early stop rule).

        Returns {"epochs_done", "stopped", "signal", "last": the last metrics row or None}.
        """
        config = self.config
        if self.epoch >= config.num_epochs:
            self.echo(f"{self.out} has already trained {self.epoch} of {config.num_epochs} epochs; nothing to do")
        progress = os.isatty(2) if progress is None else progress
        start_steps = self.epoch * self.steps_per_epoch + self.step
        stopping = False
        with StopSignals() as stop, distributed.StopVote() as vote:
            def should_stop():  # every rank stops after the same step (a collective under torchrun)
                nonlocal stopping
                if not stopping:  # once True, True for the rest of this call (no more votes)
                    steps_done = self.epoch * self.steps_per_epoch + self.step - start_steps
                    signalled = vote(stop.signum is not None)  # under torchrun: one step after the signal
                    stopping = signalled or (max_steps is not None and steps_done >= max_steps)
                return stopping

            while self.epoch < config.num_epochs:
                if self.train_epoch(should_stop, progress):
                    self.echo(format_epoch(self.end_epoch(), config.num_epochs))
                    if done is not None and done(self.history):
                        return {"epochs_done": self.epoch, "stopped": False, "signal": None, "last": self.history[-1]}
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


def run_training(config, hdf5: str, out: str, device: torch.device, *, load_from: Optional[str] = None,
                 resume: bool = False, max_steps: Optional[int] = None, precision: str = "auto",
                 compile: Optional[bool] = None, cuda_graphs: Optional[bool] = None,
                 echo: Callable[[str], None] = print, progress: Optional[bool] = None, info=None,
                 state: Optional[dict] = None, checkpoint_every_s: Optional[float] = CHECKPOINT_EVERY_S,
                 validate_every: int = 1, fused_adam: Optional[bool] = None,
                 valid_grouping: int = VALID_GROUPING) -> dict:
    """Train `config` on `hdf5` into the run directory `out`; see `Trainer.run`.

    resume: continue from out/checkpoint.pt (config.num_epochs is the run's total). max_steps: stop
    as if interrupted after that many steps of this call. progress: tqdm bar (None: when stderr is a
    terminal). precision, compile, cuda_graphs, info, state, checkpoint_every_s, validate_every, fused_adam,
    valid_grouping: see `Trainer`.
    """
    trainer = Trainer(config, hdf5, out, device, load_from=load_from, resume=resume, precision=precision,
                      compile=compile, cuda_graphs=cuda_graphs, echo=echo, info=info, state=state,
                      checkpoint_every_s=checkpoint_every_s, validate_every=validate_every, fused_adam=fused_adam,
                      valid_grouping=valid_grouping)
    return trainer.run(max_steps=max_steps, progress=progress)


def format_epoch(row: dict, num_epochs: int) -> str:
    text = f"epoch {row['epoch']}/{num_epochs}: train cost {row['train_cost']:.5f}"
    if "valid_denoising_cost" in row:
        text += " | valid denoising cost per iteration " + " ".join(f"{c:.5f}" for c in row["valid_denoising_cost"])
    if "valid_class_error" in row:
        text += f" | valid class error {row['valid_class_error'][-1]:.2f}%"
    if "valid_ami" in row:
        text += (" | valid AMI per iteration " + " ".join(f"{a:.3f}" for a in row["valid_ami"])
                 + f" (first {row['valid_grouping_examples']})")
    if row.get("samples_per_s"):
        text += f" | {row['train_time_s']:.1f} s, {row['samples_per_s']:.0f} samples/s"
    return text

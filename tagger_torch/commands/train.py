"""`tagger-torch train`: flags -> a config and a run directory -> `training.run_training`."""
from __future__ import annotations

import datetime
import os
from typing import Optional, Union

import click

from ..config import from_dict, load_config, preset_for_data, resolve_config
from ..data import dataset_info
from ..distributed import exit_now, gather, is_main, setup, teardown
from ..errors import TaggerError
from ..models import MODELS, config_class
from ..precision import resolve_device
from ..pretrained import pretrained_or_path
from ..training import run_training
from ..training.rundir import CHECKPOINT, CONFIG, load_checkpoint, prepare_run_dir, resolve_params_path
from ..training.trainer import CHECKPOINT_EVERY_S, VALID_GROUPING
from .options import (adam_option, compile_option, config_options, cuda_graphs_option, device_option,
                      precision_option)


def labeled_samples_flag(value: Optional[str]) -> Union[None, str, int]:
    """--labeled-samples: a positive integer or 'all'."""
    if value is None or value == "all":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise TaggerError(f"--labeled-samples must be a positive integer or 'all' (got {value!r})")
    return n


@click.command("train")
@click.option("--hdf5", "hdf5", type=str, help="Data file in the release's layout (optional with --resume).")
@click.option("--model", type=str, help=f"The model to train: {', '.join(MODELS)} (default: the preset's or config's; "
              "tagger). The baselines of Table 2 need labelled data (docs/baselines.md).")
@config_options(preset_help="Preset to start from: {}. Default: the model's preset matching the data file.")
@click.option("--epochs", type=int, help="Total epochs of the run (num_epochs), also when resuming.")
@click.option("--out", type=str, help="Run directory (default runs/<preset>-<time>).")
@click.option("--seed", type=int, help="Seed of the weights, the data order and the noise.")
@click.option("--labeled-samples", type=str, help="Labelled train examples for classification: N or 'all'.")
@click.option("--load-from", type=str, help="Start from these parameters (a run directory, an .npz, or a shipped "
              "model's name, e.g. shapes-ln), by name; names the model lacks are ignored, shapes are checked (stage 2).")
@device_option()
@precision_option(" (bf16 runs 1.9x faster on AVX-512-BF16 CPUs, ~20x slower on CPUs without native bf16, "
                  "and is opt-in, docs/speed.md); with --resume: the run's own.")
@compile_option(None, "torch.compile the training step. Default: when the run ahead repays compiling "
                "(about a minute on CPU); with --resume: the run's own.")
@cuda_graphs_option()
@click.option("--resume", type=str, help="Continue the run in this directory from its checkpoint.")
@click.option("--checkpoint-minutes", type=click.FloatRange(min=0), default=CHECKPOINT_EVERY_S / 60, show_default=True,
              help="Minutes between the checkpoints written within an epoch, so a process killed outright "
              "loses at most that much (0: only at each epoch's end and on Ctrl-C/SIGTERM).")
@adam_option()
@click.option("--validate-every", type=click.IntRange(1), default=1, show_default=True,
              help="Validate after every Nth epoch and after the last. Validation draws its own noise, so the "
              "trained parameters are the same for any N; only the metrics' validation rows thin out.")
@click.option("--valid-grouping", type=click.IntRange(0), default=VALID_GROUPING, show_default=True,
              help="With each validation, score the grouping (AMI, ARI per iteration) on the first N validation "
              "examples, for a model that groups and a file with true masks (0: never). Its own noise: the "
              "trained parameters do not depend on it.")
@click.option("--max-steps", type=click.IntRange(1), hidden=True,
              help="Stop as if interrupted after this many steps (tests, demos).")
def train_command(hdf5, model, preset, config_path, epochs, out, seed, labeled_samples, load_from, device,
                  precision, compile_, cuda_graphs, resume, checkpoint_minutes, validate_every, fused_adam,
                  valid_grouping, max_steps):
    """Train Tagger (or a Table-2 baseline, --model) on an HDF5 data set with the release's protocol (SPEC 7).

    Under `torchrun --nproc-per-node N` each process trains its own batches with
    DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes the run directory."""
    if epochs is not None and epochs < 1:
        raise TaggerError(f"--epochs must be >= 1 (got {epochs})")
    if model is not None:
        config_class(model)  # an unknown model: one line naming the known ones
    dev = setup(resolve_device(device))
    try:
        code = _train(hdf5, model, preset, config_path, epochs, out, seed, labeled_samples, load_from, dev,
                      precision, compile_, cuda_graphs, resume, checkpoint_minutes, validate_every, fused_adam,
                      valid_grouping, max_steps)
    finally:
        left_job = teardown()
    if left_job:
        exit_now(code)
    if code:
        raise SystemExit(code)


def _train(hdf5, model, preset, config_path, epochs, out, seed, labeled_samples, load_from, dev, precision,
           compile_, cuda_graphs, resume, checkpoint_minutes, validate_every, fused_adam, valid_grouping,
           max_steps) -> int:
    """The train command inside the job; returns the exit status (128 + signal number after a signal)."""
    echo = click.echo if is_main() else (lambda text: None)
    state = None
    if resume is not None:
        given = [flag for flag, value in (("--model", model), ("--preset", preset), ("--config", config_path),
                                          ("--seed", seed), ("--labeled-samples", labeled_samples),
                                          ("--load-from", load_from), ("--out", out)) if value is not None]
        if given:
            raise TaggerError(f"{', '.join(given)} cannot be combined with --resume (the run keeps its config)")
        if is_main():  # one probe of the directory; the Trainer checks it again on rank 0
            prepare_run_dir(resume, resume=True)
        config = load_config(os.path.join(resume, CONFIG)).replace(num_epochs=epochs)
        state = load_checkpoint(os.path.join(resume, CHECKPOINT))
        hdf5 = hdf5 or state.get("hdf5")
        out = resume
    elif hdf5 is None:
        raise TaggerError("--hdf5 PATH is required (the data to train on)")
    info = dataset_info(hdf5)
    if resume is None:
        n_labels = labeled_samples_flag(labeled_samples)
        config = resolve_config(preset, config_path, default_preset=lambda: preset_for_data(info, model or "tagger"),
                                num_epochs=epochs, seed=seed)
        if model is not None and config.model != model:
            source = f"the preset '{preset}'" if config_path is None else f"the config {config_path}"
            raise TaggerError(f"--model {model} does not match {source}, whose model is '{config.model}'")
        if n_labels is not None:  # `replace` keeps a field given None, so 'all' goes through from_dict
            config = from_dict({**config.to_dict(), "labeled_samples": None if n_labels == "all" else n_labels})
        if out is None:
            name = preset or (os.path.splitext(os.path.basename(config_path))[0] if config_path
                              else preset_for_data(info, config.model))
            out = os.path.join("runs", f"{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
            out = gather(out)[0]  # under torchrun: rank 0's name (the ranks' clocks may differ by a second)
        if load_from is not None:
            load_from = pretrained_or_path(load_from)  # a shipped model's name -> its folder
            resolve_params_path(load_from)  # fail before any work
    config.check_data(info)  # a data file that does not fit: one line, before the run directory exists
    echo(f"training into {out} on {dev}")
    result = run_training(config, hdf5, out, dev, load_from=load_from, resume=resume is not None,
                          max_steps=max_steps, precision=precision, compile=compile_, cuda_graphs=cuda_graphs,
                          echo=echo, info=info, state=state,
                          checkpoint_every_s=checkpoint_minutes * 60 if checkpoint_minutes > 0 else None,
                          validate_every=validate_every, fused_adam=fused_adam, valid_grouping=valid_grouping)
    if result["stopped"]:
        return 128 + result["signal"] if result["signal"] else 0
    echo(f"done: {result['epochs_done']} epochs in {out} (params.npz, metrics.jsonl, curves.png)")
    return 0

"""`tagger-torch evaluate`: Table-1 style scores of a trained Tagger, for every iteration 1..T.

Per batch of `valid_batch_size` (100; BatchNorm uses the batch's own statistics, SPEC's quirk, so the
batching is part of the result), in the file's order:
* the denoising cost [eq. 1] of each iteration on the *corrupted* path (what the release reports as
  Test_Denoising_Cost), and the classification cost there;
* on the *clean* path: AMI (SPEC 6) and ARI of each iteration's masks against the data's `mask`
  source, and the classification error (%) when the model classifies and the data has labels.
K (`--groups`) and T (`--iterations`) may differ from training's: no weight depends on them.
"""
from __future__ import annotations

import json
import os
import time
from typing import Optional

import click
import numpy as np
import torch

from .errors import TaggerError
from .metrics import ami_from_contingency, ari_from_contingency, contingency_tables, true_labels_from_masks


@torch.inference_mode()
def evaluate_split(model, x: torch.Tensor, masks: Optional[np.ndarray] = None,
                   labels: Optional[torch.Tensor] = None, *, batch_size: int, generator: torch.Generator,
                   n_groups: Optional[int] = None, n_iterations: Optional[int] = None,
                   progress: bool = False) -> dict:
    """Scores of `model` on the examples x (N, D), one value per iteration, averaged over examples.

    masks: (N, G, D) (or (N, G, *in_dim)) true masks -> `ami`, `ari`; labels (N, objects) ->
    `class_cost` (corrupted path) and `class_error` (clean path). `denoising_cost` (corrupted path)
    is always computed; the clean pass runs only for masks or labels.
    """
    from tqdm import tqdm

    cfg = model.config
    K = n_groups or cfg.n_groups
    T = n_iterations or cfg.n_iterations
    N = x.shape[0]
    device = x.device
    if masks is not None:
        true_labels, valid = true_labels_from_masks(masks)  # (N, D) each
        n_true = np.asarray(masks).shape[1]
    sums = {"denoising_cost": torch.zeros(T, dtype=torch.float64, device=device)}
    if labels is not None:
        sums["class_cost"] = torch.zeros(T, dtype=torch.float64, device=device)
        sums["class_error"] = torch.zeros(T, dtype=torch.float64, device=device)
    ami, ari = [], []
    for start in tqdm(range(0, N, batch_size), disable=not progress, leave=False, unit="batch"):
        xb = x[start:start + batch_size]  # (B, D)
        nb = xb.shape[0]
        lb = None if labels is None else labels[start:start + batch_size]
        out = model(xb, corrupt=True, generator=generator, labels=lb, n_groups=K, n_iterations=T)
        sums["denoising_cost"] += nb * out.denoising_cost.double()
        if lb is not None:
            sums["class_cost"] += nb * out.class_cost.double()
        if masks is None and lb is None:
            continue
        out = model(xb, corrupt=False, generator=generator, labels=lb, n_groups=K, n_iterations=T,
                    record=masks is not None)
        if lb is not None:
            sums["class_error"] += nb * out.class_error.double()
        if masks is not None:
            pred = out.trace["m"][1:].argmax(dim=1).cpu().numpy()  # (T, B, D) after iterations 1..T
            t = np.broadcast_to(true_labels[start:start + nb], pred.shape).reshape(T * nb, -1)
            v = np.broadcast_to(valid[start:start + nb], pred.shape).reshape(T * nb, -1)
            tables = contingency_tables(t, pred.reshape(T * nb, -1), v, n_true, K)  # (T*B, G, K)
            ami.append(ami_from_contingency(tables).reshape(T, nb))
            ari.append(ari_from_contingency(tables).reshape(T, nb))
    result = {key: (value / N).tolist() for key, value in sums.items()}
    if ami:
        result["ami"] = np.concatenate(ami, axis=1).mean(axis=1).tolist()
        result["ari"] = np.concatenate(ari, axis=1).mean(axis=1).tolist()
    return result


def format_table(result: dict) -> str:
    """The per-iteration scores as rows of a table shaped like the paper's Table 1a."""
    T = result["iterations"]
    rows = [("denoising cost", "denoising_cost", "{:.4f}"), ("AMI", "ami", "{:.3f}"), ("ARI", "ari", "{:.3f}"),
            ("class cost", "class_cost", "{:.4f}"), ("class error %", "class_error", "{:.2f}")]
    lines = [f"{'iteration':<16}" + "".join(f"{i:>9}" for i in range(1, T + 1))]
    for title, key, fmt in rows:
        if key in result:
            lines.append(f"{title:<16}" + "".join(f"{fmt.format(v):>9}" for v in result[key]))
    return "\n".join(lines)


def evaluate_model(model, hdf5: str, split: str = "test", n_groups: Optional[int] = None,
                   n_iterations: Optional[int] = None, seed: int = 0, progress: bool = False,
                   precision: str = "fp32") -> dict:
    """Load `split` of `hdf5` and score `model` on it (see `evaluate_split`); adds the run's facts.

    precision: fp32, bf16 or tf32, the products' arithmetic (tagger_torch.precision)."""
    from .data import dataset_info, load_split
    from .precision import autocast

    cfg = model.config
    info = dataset_info(hdf5)
    D = int(np.prod(info.in_dim))
    if D != cfg.input_size:
        raise TaggerError(f"the model's in_dim {list(cfg.in_dim)} (D={cfg.input_size}) does not match the "
                          f"inputs of {hdf5}: {list(info.in_dim)} (D={D})")
    if split not in info.splits:
        raise TaggerError(f"{hdf5} has no split '{split}' (it has: {', '.join(info.splits)})")
    classify = cfg.class_cost_x > 0 and info.has_labels
    sources = ["features"] + (["mask"] if "mask" in info.sources else []) + (["targets"] if classify else [])
    arrays = load_split(hdf5, split, sources)
    n = arrays["features"].shape[0]
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(arrays["features"], dtype=np.float32).reshape(n, D)).to(device)
    masks = arrays.get("mask")
    labels = None
    if classify:
        labels = torch.from_numpy(arrays["targets"].astype(np.int64).reshape(n, -1)).to(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    started = time.perf_counter()
    with autocast(precision, device):
        result = evaluate_split(model, x, masks, labels, batch_size=cfg.valid_batch_size, generator=generator,
                                n_groups=n_groups, n_iterations=n_iterations, progress=progress)
    result.update(precision=precision, split=split, n_examples=n, iterations=n_iterations or cfg.n_iterations,
                  groups=n_groups or cfg.n_groups, trained_iterations=cfg.n_iterations,
                  trained_groups=cfg.n_groups, hdf5=hdf5, seed=seed,
                  seconds=round(time.perf_counter() - started, 3))
    return result


@click.command("evaluate")
@click.option("--run", type=str, help="Run directory of `tagger-torch train` (config.json, params.npz).")
@click.option("--params", type=str, help="Parameter file (.npz, release names), with --config.")
@click.option("--config", "config_path", type=str, help="Config JSON of the parameters, with --params.")
@click.option("--hdf5", "hdf5", required=True, type=str, help="Data file in the release's layout.")
@click.option("--split", default="test", show_default=True, help="Split to score.")
@click.option("--iterations", type=click.IntRange(1), default=5, show_default=True,
              help="T at evaluation (the paper trains with 3 and tests with 5).")
@click.option("--groups", type=click.IntRange(2), help="K at evaluation (default: the trained K).")
@click.option("--out", type=str, help="Write the scores as JSON here (e.g. metrics.json).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise and m0 draws.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--precision", type=click.Choice(("auto", "fp32", "bf16", "tf32")), default="auto", show_default=True,
              help="auto: fp32 (bf16 is faster on CPUs with native bf16, but opt-in; docs/speed.md).")
def evaluate_command(run, params, config_path, hdf5, split, iterations, groups, out, seed, device, precision):
    """Score a trained Tagger: denoising cost, AMI, ARI (and class error) per iteration."""
    from .checkpoint import load_model, write_text
    from .precision import resolve_device, resolve_precision, warn_if_slow

    if out is not None and not os.access(os.path.dirname(os.path.abspath(out)), os.W_OK):
        raise TaggerError(f"cannot write {out}: its directory is missing or not writable")
    dev = resolve_device(device)
    config, model = load_model(run, params, config_path, device=dev)
    precision = resolve_precision(precision, dev)
    warn_if_slow(precision, dev)
    result = evaluate_model(model, hdf5, split, n_groups=groups, n_iterations=iterations, seed=seed,
                            progress=os.isatty(2), precision=precision)
    click.echo(f"{split} split of {hdf5}: {result['n_examples']} examples, K={result['groups']} groups, "
               f"T={result['iterations']} iterations (trained with K={config.n_groups}, T={config.n_iterations}), "
               f"{precision}, {result['seconds']:.1f} s")
    click.echo(format_table(result))
    if out is not None:
        write_text(out, json.dumps(result, indent=2) + "\n")
        click.echo(f"wrote {out}")

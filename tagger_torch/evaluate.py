"""Scoring a trained model on a split of a data file (`tagger-torch evaluate`), for every iteration.

The model scores (`Model.evaluate`; Tagger: Table-1 style, docs/training.md "evaluate") in batches
of `valid_batch_size` in the file's order (BatchNorm uses the batch's own statistics, SPEC's quirk,
so the batching is part of the result), with the noise drawn from `seed`. Evaluation options such
as Tagger's K (`n_groups`) and T (`n_iterations`) may differ from training's.
"""
from __future__ import annotations

import time
from typing import Optional

import torch

from .data import dataset_info
from .models import Split
from .precision import autocast
from .training.streams import load_examples


def evaluate_model(model, hdf5: str, split: str = "test", seed: int = 0, progress: bool = False,
                   precision: str = "fp32", batch_size: Optional[int] = None, max_examples: Optional[int] = None,
                   **options) -> dict:
    """Load `split` of `hdf5` and score `model` on it (`model.evaluate`); adds the run's facts.

    precision: fp32, bf16 or tf32, the products' arithmetic (tagger_torch.precision). Labels are
    used when the model classifies and the file has them, the true masks when it has them.
    batch_size: examples per batch (default valid_batch_size, the protocol's: with batch statistics
    the batching is part of the result). max_examples: only the split's first N examples (None: all)."""
    config = model.config
    info = dataset_info(hdf5)
    config.check_data(info, split, training=False)
    device = next(model.parameters()).device
    data = load_examples(hdf5, split, config, device, labels=config.uses_labels and info.has_labels,
                         masks="mask" in info.sources)
    if max_examples is not None:
        data = Split(data.x[:max_examples], None if data.labels is None else data.labels[:max_examples],
                     None if data.masks is None else data.masks[:max_examples])
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    batch_size = batch_size or config.valid_batch_size
    started = time.perf_counter()
    with autocast(precision, device):
        result = model.evaluate(data, batch_size=batch_size, generator=generator, progress=progress, **options)
    result.update(precision=precision, split=split, n_examples=data.x.shape[0], batch_size=batch_size)
    result.update(model.evaluation_facts(**options))
    result.update(hdf5=hdf5, seed=seed, device=str(device),
                  threads=torch.get_num_threads(), seconds=round(time.perf_counter() - started, 3))
    return result


def format_table(result: dict) -> str:
    """The per-iteration scores as rows of a table shaped like the paper's Table 1a (a baseline's: one
    value per row, without the iterations' header)."""
    T = result["iterations"]
    rows = [("denoising cost", "denoising_cost", "{:.4f}"), ("AMI", "ami", "{:.3f}"), ("ARI", "ari", "{:.3f}"),
            ("class cost", "class_cost", "{:.4f}"), ("class error %", "class_error", "{:.2f}")]
    lines = [f"{'iteration':<16}" + "".join(f"{i:>9}" for i in range(1, T + 1))] if "groups" in result else []
    for title, key, fmt in rows:
        if key in result:
            lines.append(f"{title:<16}" + "".join(f"{fmt.format(v):>9}" for v in result[key]))
    return "\n".join(lines)

"""Population statistics of a trained BatchNorm Tagger (`tagger-torch calibrate`), and the choice of
statistics that `evaluate` and `segment` make (`choose_normaliser`).

The release normalises with the current batch's statistics, also at test time (SPEC's quirk), so a
BatchNorm model's result for one example depends on the other examples of its batch. Calibration
runs the model over a split (the training split by default) exactly as `evaluate` does: in batches
of valid_batch_size in the file's order, each batch on the corrupted path (x~, fresh corruption and
m0 draws) and on the clean path (x, fresh m0 draws), with the batch's own statistics, and pools at
every iteration t = 1..T and normalisation site with batch statistics (every site of norm 'batch';
W, z_u_W, m_u_W of 'layer-ladder'; the Ladder's of 'layer-tagger') the exact per-unit mean and biased
variance over all K * N rows it saw (`normstats.Recorder`). `--norm-stats population` then normalises
every row with those statistics of its path and iteration (the LayerNorm sites as always), which makes
the model a function of one example.
"""
from __future__ import annotations

import os
import time
from typing import Optional

import torch
from tqdm import tqdm

from .data import dataset_info
from .errors import TaggerError
from .norms import uses_batch_statistics
from .normstats import (NORM_STATS, NormStats, PopulationStatistics, Recorder, check_norm_stats,
                        load_norm_stats, params_fingerprint)
from .training.streams import load_examples

NORM_CHOICES = ("batch", "population")


def calibrate_model(model, hdf5: str, split: str = "train", n_iterations: int = 5, n_groups: Optional[int] = None,
                    max_examples: Optional[int] = None, seed: int = 0, progress: bool = False) -> NormStats:
    """Population statistics of `model` (a BatchNorm Tagger) over `split` of `hdf5`.

    n_iterations: T, statistics are kept for iterations 1..T (an iteration's do not depend on T);
    n_groups: K (default: the trained K; the statistics pool K*B rows, so they hold for that K);
    max_examples: only the first N examples of the split (None: all); seed: the noise and m0 draws.
    """
    config = model.config
    config.require("population_statistics", "calibrate")
    K = n_groups or config.n_groups
    recorder = Recorder(config.norm, K)  # TaggerError for a norm without batch statistics
    info = dataset_info(hdf5)
    config.check_data(info, split, training=False)
    device = next(model.parameters()).device
    x = load_examples(hdf5, split, config, device, labels=False).x  # (N, D)
    if max_examples is not None:
        x = x[:max_examples]
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    bs = config.valid_batch_size
    started = time.perf_counter()
    with torch.inference_mode():
        for start in tqdm(range(0, x.shape[0], bs), disable=not progress, leave=False, unit="batch",
                          desc="calibrate"):
            xb = x[start:start + bs]  # (B, D)
            # the draws in evaluate's order: corrupted pass (corruption, m0), then clean pass (m0)
            model(xb, corrupt=True, generator=generator, n_groups=K, n_iterations=n_iterations, normaliser=recorder)
            model(xb, corrupt=False, generator=generator, n_groups=K, n_iterations=n_iterations,
                  normaliser=recorder)
    facts = dict(iterations=n_iterations, groups=K, examples=int(x.shape[0]), split=split,
                 hdf5=os.path.abspath(hdf5), seed=seed, batch_size=bs, params_sha256=params_fingerprint(model),
                 config=config.to_json(), seconds=round(time.perf_counter() - started, 3))
    return recorder.result(facts)


def stats_path(run: Optional[str]) -> Optional[str]:
    """DIR/norm_stats.npz of a run directory (None without one)."""
    return None if run is None else os.path.join(run, NORM_STATS)


def choose_normaliser(model, run: Optional[str], choice: str, n_groups: Optional[int], n_iterations: Optional[int],
                      n_examples: Optional[int] = None, paths=("clean", "corrupted")):
    """The normaliser for `--norm-stats choice` (auto, batch or population): None (each batch's own
    statistics, the release's) or `PopulationStatistics` from DIR/norm_stats.npz, checked.

    auto: population statistics for a model with BatchNorm sites (norm 'batch', 'layer-ladder',
    'layer-tagger') that has them, else batch statistics. A model whose norm has only LayerNorm sites
    normalises each example alone: it needs and takes no population statistics. A model with BatchNorm
    sites cannot normalise one example with batch statistics (n_examples == 1): error. A model without
    population statistics (config.population_statistics) takes batch statistics.
    """
    if not model.config.population_statistics:
        if choice == "population":
            model.config.require("population_statistics", "--norm-stats population")
        return None
    norm = model.config.norm
    batch_norm = uses_batch_statistics(norm)
    path = stats_path(run)
    calibrate = f"tagger-torch calibrate --run {run or 'DIR'} --iterations {n_iterations}"
    if choice == "population" and not batch_norm:
        raise TaggerError(f"the model uses LayerNorm (norm '{norm}'), which normalises each example alone: it "
                          "needs no population statistics (use --norm-stats batch or auto)")
    if choice == "population" or (choice == "auto" and batch_norm and path and os.path.isfile(path)):
        if path is None:
            raise TaggerError("population statistics are stored with a run: give --run DIR")
        if not os.path.isfile(path):
            raise TaggerError(f"{run} has no population statistics ({NORM_STATS}): run {calibrate}")
        stats = load_norm_stats(path)
        check_norm_stats(stats, model, path, n_groups, n_iterations, paths)
        p = next(model.parameters())
        return PopulationStatistics(stats, device=p.device, dtype=p.dtype, norm=norm)
    if batch_norm and n_examples == 1:
        raise TaggerError(f"a model with BatchNorm (norm '{norm}') cannot normalise one example with batch statistics: "
                          f"run {calibrate} first (then --norm-stats population)")
    return None


def describe(stats: NormStats) -> str:
    """One line on what a statistics file was computed from."""
    f = stats.facts
    return (f"T={f['iterations']} iterations, K={f['groups']} groups, {f['examples']} examples of the "
            f"{f['split']} split of {f['hdf5']}, seed {f['seed']}, batches of {f['batch_size']}")

"""The normalisation seam: where every normalisation of a TAG iteration takes its statistics.

Every `normalize` of Tagger and its Ladder (SPEC 4d, 4f, 5) goes through one callable
`normalise(a, site)`, a: (N, H) with N = K*B rows, `site` the name of the normalisation:

  W                 [A1.5] the input layer, BN(a_in @ W)
  f_1_W .. f_L_W    the Ladder's encoder, z_l = BN(h_{l-1} @ f_l_W)
  y                 the top decoder layer's vertical input, BN(y) (the softmax output, a release quirk)
  g_{L-1}_W .. g_0_W  the decoder, u_l = BN(zhat_{l+1} @ g_l_W)
  z_u_W, m_u_W      [A1.6] the output heads

The config's `norm` says which statistics each site takes (tagger_torch.norms: 'batch', 'layer' or
'layer-groups'). Three normalisers fill that seam:

* `BatchStatistics` (the default, `tag_iteration(normalise=None)`): `ops.normalize(a, statistics, K)`
  with the site's statistics, the release's protocol (SPEC's quirk: BatchNorm uses the current batch's
  K*B rows, also in evaluation; LayerNorm a row, or an example's K rows, alone).
* `Recorder` (`tagger-torch calibrate`): normalises as `BatchStatistics` does and pools, per
  (path, iteration, site) of the sites with batch statistics, the exact mean and biased variance per
  unit over every row it saw.
* `PopulationStatistics` (`--norm-stats population`): normalises the batch-statistics sites with
  stored per-unit statistics of (path, iteration, site), and the other sites (LayerNorm, each row
  alone) as always, so the model becomes a function of one example: a BatchNorm model can segment an
  image alone. Models whose norm has no batch-statistics site need neither.

The statistics differ by iteration (the state z, m fed to W changes) and by path: `clean` (no
corruption: AMI, segment) and `corrupted` (x~: the denoising cost). `Tagger.forward(normaliser=...)`
asks a normaliser for the callable of each iteration with `at(iteration, path)`.

The file DIR/norm_stats.npz (`save_norm_stats`, `load_norm_stats`):
  {path}/{site}/mean, {path}/{site}/var   (T, H_site) float64, row t = iteration t + 1
  {path}/rows                             (T,) int64: the rows pooled at each iteration (K * examples)
  format, iterations (T), groups (K), examples, seed, batch_size, split, hdf5, params_sha256, config
NumPy twin: none (the reference computes the release's batch statistics only).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional

import numpy as np
import torch
from torch import Tensor

from .constants import NORM_EPS
from .errors import TaggerError
from .files import read_npz, save_npz
from .norms import site_statistics, uses_batch_statistics
from .ops import normalize

PATHS = ("clean", "corrupted")
FORMAT = 1
NORM_STATS = "norm_stats.npz"  # in the run directory
Normalise = Callable[[Tensor, str], Tensor]  # (a (N, H), site) -> normalised a (N, H)


class BatchStatistics:
    """SPEC "BN over (K,B)" / SPEC 8: each call normalises with its own rows' statistics, those that
    `norm` gives the site; n_groups: K, the groups stacked in the rows (for 'layer-groups')."""

    def __init__(self, norm: str, n_groups: Optional[int] = None):
        self.norm = norm
        self.n_groups = n_groups

    def __call__(self, a: Tensor, site: str) -> Tensor:
        return normalize(a, site_statistics(self.norm, site), self.n_groups)


@dataclass
class NormStats:
    """Population statistics per path, iteration and site, and what they were computed for."""

    mean: Dict[str, Dict[str, np.ndarray]]  # path -> site -> (T, H) float64
    var: Dict[str, Dict[str, np.ndarray]]  # path -> site -> (T, H) float64, biased
    rows: Dict[str, np.ndarray]  # path -> (T,) rows pooled per iteration
    facts: Dict[str, object] = field(default_factory=dict)  # iterations, groups, examples, seed, ...

    @property
    def iterations(self) -> int:
        return int(self.facts["iterations"])

    @property
    def groups(self) -> int:
        return int(self.facts["groups"])


class Recorder:
    """Calibration: batch-statistics normalisation that also pools each site's per-unit statistics.

    Pooling is exact (Chan et al.'s parallel update in float64): the mean and the biased variance over
    all rows seen at (path, iteration, site), whatever the batch sizes, as if one batch held them all.
    Only the sites with batch statistics are pooled; the others normalise each row, or each example's K
    rows (n_groups = K), alone.
    """

    def __init__(self, norm: str, n_groups: Optional[int] = None):
        if not uses_batch_statistics(norm):
            raise TaggerError(f"the model's norm '{norm}' (LayerNorm) normalises each example alone: "
                              "it needs no population statistics")
        self.norm, self.n_groups = norm, n_groups
        self._n: Dict[tuple, int] = {}
        self._mean: Dict[tuple, Tensor] = {}
        self._m2: Dict[tuple, Tensor] = {}

    def at(self, iteration: int, path: str) -> Normalise:
        def normalise(a: Tensor, site: str) -> Tensor:
            statistics = site_statistics(self.norm, site)
            if statistics == "batch":
                self._add((path, iteration, site), a.detach())
            return normalize(a, statistics, self.n_groups)
        return normalise

    def _add(self, key: tuple, a: Tensor) -> None:
        a = a.double()  # (N, H)
        n_b = a.shape[0]
        mean_b = a.mean(dim=0)
        m2_b = ((a - mean_b) ** 2).sum(dim=0)
        if key not in self._n:
            self._n[key], self._mean[key], self._m2[key] = n_b, mean_b, m2_b
            return
        n_a = self._n[key]
        n = n_a + n_b
        delta = mean_b - self._mean[key]
        # pooled: mean = mean_a + delta n_b / n;  M2 = M2_a + M2_b + delta^2 n_a n_b / n
        self._mean[key] = self._mean[key] + delta * (n_b / n)
        self._m2[key] = self._m2[key] + m2_b + delta * delta * (n_a * n_b / n)
        self._n[key] = n

    def result(self, facts: Mapping[str, object]) -> NormStats:
        """The pooled statistics as a `NormStats` with `facts` (iterations T, groups K, ...)."""
        T = int(facts["iterations"])
        mean: Dict[str, Dict[str, np.ndarray]] = {}
        var: Dict[str, Dict[str, np.ndarray]] = {}
        rows: Dict[str, np.ndarray] = {}
        for path in PATHS:
            sites = list(dict.fromkeys(site for p, i, site in self._n if p == path))
            if not sites:
                continue
            mean[path] = {s: np.stack([self._mean[(path, i, s)].cpu().numpy() for i in range(T)]) for s in sites}
            var[path] = {s: np.stack([(self._m2[(path, i, s)] / self._n[(path, i, s)]).cpu().numpy()
                                      for i in range(T)]) for s in sites}
            rows[path] = np.array([self._n[(path, i, sites[0])] for i in range(T)], dtype=np.int64)
        return NormStats(mean, var, rows, dict(facts))


class PopulationStatistics:
    """Normalisation with stored statistics: a row's result depends on that row alone.

    stats: a `NormStats`; the model's device and dtype receive the per-unit mean and sqrt(var + eps).
    norm: the model's; its sites without batch statistics normalise each row, or each example's K =
    stats.groups rows, alone, as in training.
    """

    def __init__(self, stats: NormStats, device=None, dtype: torch.dtype = torch.float32, norm: str = "batch"):
        self.stats = stats
        self.norm = norm
        self._tables: Dict[str, list] = {}
        for path, sites in stats.mean.items():
            self._tables[path] = [
                {site: (torch.as_tensor(stats.mean[path][site][i], device=device, dtype=dtype),
                        torch.as_tensor(np.sqrt(stats.var[path][site][i] + NORM_EPS), device=device, dtype=dtype))
                 for site in sites}
                for i in range(stats.iterations)]

    def at(self, iteration: int, path: str) -> Normalise:
        if path not in self._tables or iteration >= len(self._tables[path]):
            raise TaggerError(f"the population statistics hold {self.stats.iterations} iterations of the "
                              f"{'/'.join(self._tables)} path; calibrate with --iterations {iteration + 1}")
        table = self._tables[path][iteration]

        def normalise(a: Tensor, site: str) -> Tensor:
            statistics = site_statistics(self.norm, site)
            if statistics != "batch":
                return normalize(a, statistics, self.stats.groups)
            if site not in table:
                raise TaggerError(f"the population statistics have no normalisation site '{site}'; calibrate again")
            mean, std = table[site]
            # SPEC "BN over (K,B)" with the population's per-unit mean and biased variance   (N, H)
            return (a - mean) / std
        return normalise


def params_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of the model's parameters (names, shapes and float32 values, in order)."""
    digest = hashlib.sha256()
    for name, p in model.state_dict().items():
        value = np.ascontiguousarray(p.detach().cpu().float().numpy())
        digest.update(f"{name}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def save_norm_stats(path: str, stats: NormStats) -> None:
    """Write `stats` to `path` (.npz, the layout in this module's docstring)."""
    arrays: Dict[str, np.ndarray] = {"format": np.array(FORMAT)}
    for key, value in stats.facts.items():
        arrays[key] = np.array(value)
    for p in stats.mean:
        arrays[f"{p}/rows"] = stats.rows[p]
        for site in stats.mean[p]:
            arrays[f"{p}/{site}/mean"] = stats.mean[p][site]
            arrays[f"{p}/{site}/var"] = stats.var[p][site]
    save_npz(path, arrays, dtype=None)


def load_norm_stats(path: str) -> NormStats:
    """Read a file of `save_norm_stats`; TaggerError when it is not one."""
    arrays = read_npz(path, "population statistics")
    if "format" not in arrays or int(arrays["format"]) != FORMAT or "iterations" not in arrays:
        raise TaggerError(f"{path} is not a population-statistics file of this version; run calibrate again")
    mean: Dict[str, Dict[str, np.ndarray]] = {}
    var: Dict[str, Dict[str, np.ndarray]] = {}
    rows, facts = {}, {}
    for key, value in arrays.items():
        parts = key.split("/")
        if len(parts) == 3:
            (mean if parts[2] == "mean" else var).setdefault(parts[0], {})[parts[1]] = value
        elif len(parts) == 2:
            rows[parts[0]] = value
        elif key != "format":
            facts[key] = value.item()
    return NormStats(mean, var, rows, facts)


def check_norm_stats(stats: NormStats, model, where: str, n_groups: int, n_iterations: int,
                     paths=PATHS) -> None:
    """TaggerError unless `stats` fit `model`'s parameters, K = n_groups, T <= the calibrated T and
    hold `paths`; `where` names the file in the message."""
    again = "run tagger-torch calibrate again"
    if stats.facts.get("params_sha256") != params_fingerprint(model):
        raise TaggerError(f"{where} was calibrated for other parameters (were they trained further?); {again}")
    missing = [p for p in paths if p not in stats.mean]
    if missing:
        raise TaggerError(f"{where} has no statistics of the {' and '.join(missing)} path; {again}")
    if n_groups != stats.groups:
        raise TaggerError(f"{where} was calibrated with K={stats.groups} groups, not {n_groups}; "
                          f"calibrate with --groups {n_groups}")
    if n_iterations > stats.iterations:
        raise TaggerError(f"{where} holds statistics for T={stats.iterations} iterations, not {n_iterations}; "
                          f"calibrate with --iterations {n_iterations}")

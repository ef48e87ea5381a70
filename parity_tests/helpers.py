"""The one comparison helper of the parity suite: identical inputs, parameters and noise for both
implementations, then every trace array of every iteration compared against `tolerances.py`.

A `Case` names a configuration, a batch size, K and T (possibly overriding the config's, as evaluation
does), whether the pass is corrupted and whether labels are given. `build(case)` draws everything from
the case's seed with NumPy: parameters are the release init *perturbed* (every array, a1..a10 included;
at the release init the decoder outputs zero, which would make parity trivial), then rounded to float32
so that the float32 port and the float64 reference start from the same numbers, as do x, m_init and the
corruption draws.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

import tagger_reference as reference
from tagger_torch.config import TaggerConfig
from tagger_torch.model import Tagger

from .tolerances import Tol, tolerances

TRACE_ARRAYS = ("z", "m", "m_lh", "delta_z", "y", "denoising_cost", "class_cost", "class_error")


@dataclass(frozen=True)
class Case:
    name: str
    config: TaggerConfig
    batch: int = 8
    n_groups: Optional[int] = None  # K override (None: the config's)
    n_iterations: Optional[int] = None  # T override
    corrupted: bool = True  # False: the clean path
    labels: bool = False  # give labels (configs with a class head)
    seed: int = 0


def _config(**changes) -> TaggerConfig:
    base = dict(in_dim=(3, 4), encoder_proj=(10, 8, 6), n_groups=3, n_iterations=3, seed=5)
    return TaggerConfig(**{**base, **changes})


_CONT = dict(input_type="continuous", zhat_init_value=0.5)

# Binary/continuous x batch/layer norm x 1/2 objects x other K and T x B = 1 and 100. Tiny layers.
CASES: List[Case] = [
    Case("binary-batch", _config()),
    Case("binary-layer", _config(norm="layer"), seed=1),
    Case("binary-clean-K5-T4", _config(n_iterations=2), n_groups=5, n_iterations=4, corrupted=False, seed=2),
    Case("binary-B1", _config(), batch=1, seed=3),
    Case("binary-B100-deep", _config(in_dim=(4, 5), encoder_proj=(12, 10, 8, 6)), batch=100, seed=4),
    Case("continuous-batch-1obj", _config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1),
         labels=True, seed=5),
    Case("continuous-layer-2obj", _config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1,
                                          objects_per_sample=2, norm="layer"), labels=True, seed=6),
    Case("continuous-clean-K2-T5", _config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1,
                                           objects_per_sample=2), n_groups=2, n_iterations=5,
         corrupted=False, labels=True, seed=7),
    Case("continuous-B1-2obj", _config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1,
                                       objects_per_sample=2), batch=1, labels=True, seed=8),
    Case("continuous-B100-2obj", _config(**_CONT, in_dim=(1, 4, 5), encoder_proj=(12, 10, 8, 11),
                                         class_cost_x=0.1, objects_per_sample=2, n_iterations=4),
         batch=100, labels=True, seed=9),
]


def perturbed_params(config: TaggerConfig, seed: int, scale: float = 0.5) -> Dict[str, np.ndarray]:
    """The release init for `seed`, every array moved by scale * N(0,1) (weights by scale * their
    std), rounded to float32."""
    rng = np.random.RandomState(1000 + seed)
    params = {}
    for name, value in reference.init_params(config, seed).items():
        spread = scale * value.std() if name.endswith("_W") else scale
        params[name] = np.float32(value + spread * rng.randn(*value.shape))
    return params


@dataclass
class Inputs:
    params: Dict[str, np.ndarray]
    x: np.ndarray  # (B, *in_dim)
    m_init: np.ndarray  # (K, B, D)
    corruption: Optional[np.ndarray]  # (B, D) or None
    labels: Optional[np.ndarray]  # (B, objects) or None


def build(case: Case) -> Inputs:
    """Everything a pass needs, from the case's seed, float32-representable."""
    cfg = case.config
    rng = np.random.RandomState(case.seed)
    B, D = case.batch, cfg.input_size
    K = case.n_groups or cfg.n_groups
    if cfg.input_type == "binary":
        x = (rng.rand(B, *cfg.in_dim) < 0.3).astype(np.float32)
        corruption = (rng.rand(B, D) < cfg.input_noise).astype(np.float32)
    else:
        x = rng.rand(B, *cfg.in_dim).astype(np.float32)
        corruption = rng.randn(B, D).astype(np.float32)
    m_init = rng.randn(K, B, D).astype(np.float32)
    labels = rng.randint(0, cfg.n_classes, (B, cfg.objects_per_sample)) if case.labels else None
    if labels is not None and cfg.objects_per_sample == 2:
        labels[: B // 4, 1] = labels[: B // 4, 0]  # some images with the same digit twice
    return Inputs(perturbed_params(cfg, case.seed), x, m_init, corruption if case.corrupted else None, labels)


def run_reference(case: Case, inputs: Inputs) -> Dict[str, np.ndarray]:
    return reference.forward(inputs.params, case.config, inputs.x, inputs.m_init, inputs.corruption,
                             inputs.labels, n_groups=case.n_groups, n_iterations=case.n_iterations)


@contextlib.contextmanager
def no_tf32():
    """Plain float32 products on CUDA (TF32 off) while comparing."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def run_torch(case: Case, inputs: Inputs, dtype: torch.dtype, device: str) -> Dict[str, np.ndarray]:
    model = Tagger(case.config, params=inputs.params, dtype=dtype, device=device)
    with torch.no_grad(), no_tf32():
        out = model(torch.from_numpy(inputs.x), corrupt=False,
                    corruption=None if inputs.corruption is None else torch.from_numpy(inputs.corruption),
                    m_init=torch.from_numpy(inputs.m_init),
                    labels=None if inputs.labels is None else torch.from_numpy(inputs.labels),
                    n_groups=case.n_groups, n_iterations=case.n_iterations, record=True)
    return {key: value.double().cpu().numpy() for key, value in out.trace.items()}


def errors(ref: np.ndarray, got: np.ndarray, tol: Tol) -> Tuple[float, float]:
    """(max abs error, max rel error over the elements where |ref| > tol.atol)."""
    diff = np.abs(got - ref)
    big = np.abs(ref) > tol.atol
    return float(diff.max(initial=0.0)), float((diff[big] / np.abs(ref[big])).max(initial=0.0))


def class_error_slack(ref_trace: Dict[str, np.ndarray], labels: np.ndarray, tol_p: Tol) -> np.ndarray:
    """(T,) how far class_error may move: 100/B for each example whose ranking of P decides its error
    (the top-M classes, M objects) by a margin within P's tolerance, where rounding may flip it."""
    slack = []
    for y in ref_trace["y"]:  # (K, B, HL)
        P = reference.class_probabilities(y)  # (B, C)
        top = -np.sort(-P, axis=1)[:, : labels.shape[1] + 1]
        margins = np.abs(np.diff(top, axis=1)).min(axis=1)
        close = margins <= 2 * (tol_p.atol + tol_p.rtol * top.max(axis=1))
        slack.append(100.0 * close.sum() / P.shape[0])
    return np.array(slack)


def compare(case: Case, inputs: Inputs, ref: Dict[str, np.ndarray], got: Dict[str, np.ndarray],
            device: str, dtype: str) -> None:
    """Assert every array of every iteration is within its tolerance.

    Checked in the order of computation (z[t], m[t], then iteration t's m_lh, delta_z, y and costs),
    so the first failure names the quantity where the two implementations part: the message gives the
    case, the quantity, the iteration, the max abs/rel error and the tolerance. z and m are indexed
    by state: index 0 is the initial state, index t the state after t iterations.
    """
    table = tolerances(dtype)
    assert set(got) == set(ref), f"{case.name}: trace arrays differ: {sorted(got)} vs {sorted(ref)}"
    for name in ref:
        assert got[name].shape == ref[name].shape, f"{case.name}: {name} shape {got[name].shape} != {ref[name].shape}"
    slack = class_error_slack(ref, inputs.labels, table["y"]) if "class_error" in ref else None
    T = len(ref["denoising_cost"])
    for t in range(T + 1):
        for name in TRACE_ARRAYS:
            if name not in ref or t >= len(ref[name]):
                continue
            tol = table[name]
            r, g = ref[name][t], got[name][t]
            atol = tol.atol + (slack[t] if name == "class_error" else 0.0)
            if not np.all(np.abs(g - r) <= atol + tol.rtol * np.abs(r)):
                abs_err, rel_err = errors(r, g, tol)
                where = f"state {t} (after {t} iterations)" if name in ("z", "m") else f"iteration {t}"
                raise AssertionError(
                    f"{case.name} [{device} {dtype}]: {name} at {where}: max abs err {abs_err:.3g}, "
                    f"max rel err {rel_err:.3g} (tolerance atol {atol:.3g}, rtol {tol.rtol:.3g})")

"""The parity suite's cases: identical inputs, parameters and noise for both implementations, and the
runs of each (the comparison itself is `compare.py`, its bounds `tolerances.py`).

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
from typing import Dict, List, Optional

import numpy as np
import torch

import tagger_reference as reference
from tagger_torch.config import TaggerConfig
from tagger_torch.model import Tagger

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


def tiny_config(**changes) -> TaggerConfig:
    base = dict(in_dim=(3, 4), encoder_proj=(10, 8, 6), n_groups=3, n_iterations=3, seed=5)
    return TaggerConfig(**{**base, **changes})


_CONT = dict(input_type="continuous", zhat_init_value=0.5)

# Binary/continuous x every norm x 1/2 objects x other K and T x B = 1 and 100. Tiny layers.
CASES: List[Case] = [
    Case("binary-batch", tiny_config()),
    Case("binary-layer", tiny_config(norm="layer"), seed=1),
    Case("binary-clean-K5-T4", tiny_config(n_iterations=2), n_groups=5, n_iterations=4, corrupted=False, seed=2),
    Case("binary-B1", tiny_config(), batch=1, seed=3),
    Case("binary-B100-deep", tiny_config(in_dim=(4, 5), encoder_proj=(12, 10, 8, 6)), batch=100, seed=4),
    Case("continuous-batch-1obj", tiny_config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1),
         labels=True, seed=5),
    Case("continuous-layer-2obj", tiny_config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1,
                                          objects_per_sample=2, norm="layer"), labels=True, seed=6),
    Case("continuous-clean-K2-T5", tiny_config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1,
                                           objects_per_sample=2), n_groups=2, n_iterations=5,
         corrupted=False, labels=True, seed=7),
    Case("continuous-B1-2obj", tiny_config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1,
                                       objects_per_sample=2), batch=1, labels=True, seed=8),
    Case("continuous-B100-2obj", tiny_config(**_CONT, in_dim=(1, 4, 5), encoder_proj=(12, 10, 8, 11),
                                         class_cost_x=0.1, objects_per_sample=2, n_iterations=4),
         batch=100, labels=True, seed=9),
    # the LayerNorm placements of tagger_torch.norms (each statistics, learned gains, mixed sites)
    Case("binary-layer-groups", tiny_config(norm="layer-groups"), seed=10),
    Case("binary-layer-groups-clean-K5-T4", tiny_config(norm="layer-groups", n_iterations=2), n_groups=5,
         n_iterations=4, corrupted=False, seed=11),
    Case("binary-layer-gain-deep", tiny_config(in_dim=(4, 5), encoder_proj=(12, 10, 8, 6), norm="layer-gain"),
         seed=12),
    Case("continuous-layer-gain-2obj", tiny_config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1,
                                               objects_per_sample=2, norm="layer-gain"), labels=True, seed=13),
    Case("binary-layer-ladder", tiny_config(norm="layer-ladder"), seed=14),
    Case("continuous-layer-tagger-1obj", tiny_config(**_CONT, encoder_proj=(10, 8, 11), class_cost_x=0.1,
                                                 norm="layer-tagger"), labels=True, seed=15),
]


def perturbed_params(config: TaggerConfig, seed: int, scale: float = 0.5) -> Dict[str, np.ndarray]:
    """The release init for `seed`, every array moved by scale * N(0,1) (weights by scale * their
    std), rounded to float32: the one perturbed-parameters helper of parity_tests and tests/."""
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

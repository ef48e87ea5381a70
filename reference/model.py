"""T iterations of Algorithm 1 with every intermediate recorded, and the training cost (SPEC 1-6).

The slow twin of `tagger_torch.model` (`Tagger.forward` with record=True, and `TaggerOutput.cost`):
all randomness comes in as arguments (`m_init`, `corruption`), everything is computed in float64.
"""
from typing import Dict

import numpy as np

from tagger_torch.errors import TaggerError
from tagger_torch.inputs import check_input_shape, check_labels, check_params, check_shape

from .costs import class_probabilities, classification_cost, classification_error, denoising_cost
from .ops import pos
from .params import param_shapes
from .tagger import LADDER, corrupt, initial_state, tag_iteration


def _as_float64(params: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}


def _flatten_input(x, config):
    """(B, *in_dim) or (B, D) -> (B, D) float64; TaggerError on any other shape."""
    x = np.asarray(x)
    B = check_input_shape(x.shape, config)
    return x.reshape(B, config.input_size).astype(np.float64)


def forward(params, config, x, m_init, corruption=None, labels=None, n_groups=None, n_iterations=None,
            mapping=LADDER):
    """Algorithm 1: T TAG iterations from the initial state, with every intermediate recorded.

    params: dict of release names -> arrays (cast to float64 here). config: TaggerConfig.
    x: (B, *in_dim) or (B, D) clean input. m_init: (K, B, D) N(0,1) draws for m0 (SPEC 3).
    corruption: None (clean path) or (B, D) draws (SPEC 1). labels: None, (B,) or (B, 2) digit labels.
    n_groups, n_iterations: override K and T (evaluation); K must match m_init. mapping: SPEC 4e.
    Returns the trace dict of docs/architecture.md: z, m (T+1, K, B, D); m_lh, delta_z (T, K, B, D);
    y (T, K, B, HL); denoising_cost (T,); with labels class_cost (T,) and class_error (T,) in %.
    """
    params = _as_float64(check_params(params, param_shapes(config, mapping)))
    x = _flatten_input(x, config)
    if config.input_type == "binary" and not np.all((x == 0) | (x == 1)):
        raise TaggerError("binary inputs must hold only 0 and 1 (use input_type 'continuous' otherwise)")
    B, D = x.shape
    K = n_groups or config.n_groups
    T = n_iterations or config.n_iterations
    m_init = np.asarray(m_init, dtype=np.float64)
    check_shape("m_init", m_init.shape, (K, B, D))
    if corruption is not None:
        check_shape("corruption", np.shape(corruption), (B, D))
    if labels is not None:
        labels = check_labels(labels, config, B)
    v = None if config.input_type == "binary" else pos(params["v"])

    # SPEC 1: x~ = corrupt(x), repeated K times along a new leading axis   (K, B, D)
    x_tilde = np.repeat(corrupt(x, corruption, config)[None], K, axis=0)
    # SPEC 3: z0, m0; at i = 0 the binary path's "pre-sigmoid z" is z0 itself
    z, m = initial_state(m_init, config.zhat_init_value)
    zpre = z

    trace = {name: [] for name in ("z", "m", "m_lh", "delta_z", "y", "denoising_cost")}
    if labels is not None:
        trace["class_cost"], trace["class_error"] = [], []
    trace["z"].append(z)
    trace["m"].append(m)
    for _ in range(T):
        out = tag_iteration(x_tilde, z, m, zpre, params, config, mapping)
        for name in ("z", "m", "m_lh", "delta_z", "y"):
            trace[name].append(getattr(out, name))
        # SPEC 4g: the costs use the new state and the clean x
        trace["denoising_cost"].append(denoising_cost(x, out.z, out.m, config, v))
        if labels is not None:
            P = class_probabilities(out.y)
            trace["class_cost"].append(classification_cost(P, labels))
            trace["class_error"].append(classification_error(P, labels))
        z, m, zpre = out.z, out.m, out.zpre
    return {name: np.array(values, dtype=np.float64) for name, values in trace.items()}


def training_cost(params, config, x, m_init, corruption, labels=None, mapping=LADDER):
    """SPEC 6: the scalar the release minimises on one minibatch.

    Mean over the T iterations of the denoising cost on the corrupted path, plus class_cost_x times
    the classification cost of the last iteration when labels are given (the release computes the
    two on separate labelled/unlabelled minibatches; here both use x).
    """
    trace = forward(params, config, x, m_init, corruption, labels, mapping=mapping)
    cost = trace["denoising_cost"].mean()
    if labels is not None and config.class_cost_x > 0:
        cost = cost + config.class_cost_x * trace["class_cost"][-1]
    return float(cost)

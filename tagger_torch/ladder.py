"""The parametric mapping of Tagger: the release's Ladder network (SPEC 5), in PyTorch.

Twin of `tagger_reference.ladder` (same function names, same contracts). A mapping provides its
parameters' shapes, their initial values in the release's order, the map itself and its matrix
products (for the FLOP count); `tagger_torch.tagger.LADDER` bundles the four for `tag_iteration`.

Layers 0..L with sizes encoder_proj = (H0, ..., HL); layer 0 is the input h. Parameters, by the
release's names: f_l_W (H_{l-1}, H_l), f_l_b (H_l) for l = 1..L, f_L_c (H_L) (the softmax top's
scale; a norm with learned gains, SPEC 8, has f_l_c for every l), g_l_a1..g_l_a10 (H_l) for l = L..0
(the combinators), g_l_W (H_{l+1}, H_l) for l = L-1..0.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .norms import NORMS
from .normstats import BatchStatistics
from .ops import project

Shape = Tuple[int, ...]


def ladder_shapes(config) -> "OrderedDict[str, Shape]":
    """The Ladder's parameters and shapes in the order the release creates them (LadderAE.f, .g); a norm
    with learned gains (SPEC 8) adds f_l_c (H_l) after f_l_b for the relu layers l < L."""
    H = config.encoder_proj
    L = len(H) - 1
    shapes: "OrderedDict[str, Shape]" = OrderedDict()
    for l in range(1, L + 1):
        shapes[f"f_{l}_W"] = (H[l - 1], H[l])
        shapes[f"f_{l}_b"] = (H[l],)
        if l < L and NORMS[config.norm].gains:
            shapes[f"f_{l}_c"] = (H[l],)
    shapes[f"f_{L}_c"] = (H[L],)
    for l in range(L, -1, -1):
        if l < L:
            shapes[f"g_{l}_W"] = (H[l + 1], H[l])
        for j in range(1, 11):
            shapes[f"g_{l}_a{j}"] = (H[l],)
    return shapes


def init_ladder(config, seed: int) -> "OrderedDict[str, np.ndarray]":
    """SPEC 7: the Ladder's initial parameters for `seed`, float32, in `ladder_shapes` order.

    The Ladder's own `numpy.random.RandomState(seed)` draws N(0,1)/sqrt(fan_in) of shape (in, out):
    f_1_W..f_L_W (clean encoder), the same L shapes again (the corrupted encoder draws, then finds
    the shared weights and discards its draws), then g_{L-1}_W .. g_0_W. The release divides the
    decoder weights by `np.sqrt(np.float32(H_{l+1}))` (ladder.py computes their fan-in with
    `np.prod(dtype=floatX, ...)`), a float32 square root, which can change the last float32 bit.
    Biases are 0, the gains f_l_c are 1, the combinators have a2 = a7 = 1 and the other a's 0.
    """
    shapes = ladder_shapes(config)
    L = len(config.encoder_proj) - 1
    rng = np.random.RandomState(seed)
    drawn: Dict[str, np.ndarray] = {}
    for l in range(1, L + 1):
        shape = shapes[f"f_{l}_W"]
        drawn[f"f_{l}_W"] = rng.randn(*shape) / np.sqrt(shape[0])
    for l in range(1, L + 1):  # the corrupted encoder's draws, discarded by the release
        rng.randn(*shapes[f"f_{l}_W"])
    for l in range(L - 1, -1, -1):
        shape = shapes[f"g_{l}_W"]
        drawn[f"g_{l}_W"] = rng.randn(*shape) / np.float64(np.sqrt(np.float32(shape[0])))
    for name, shape in shapes.items():
        if name not in drawn:
            ones = (name.startswith("f_") and name.endswith("_c")) or name.endswith(("_a2", "_a7"))
            drawn[name] = np.ones(shape) if ones else np.zeros(shape)
    return OrderedDict((name, np.asarray(drawn[name], dtype=np.float32)) for name in shapes)


def combinator_kind(config) -> str:
    """The release uses 'gauss_stable_v' for continuous inputs and 'gauss' for binary ones."""
    return "gauss_stable_v" if config.input_type == "continuous" else "gauss"


def combinator(z_lat: Tensor, u: Tensor, a: Sequence[Tensor], kind: str) -> Tensor:
    """SPEC 5, the Ladder's combinator g(z_lat, u) of kind 'gauss' or 'gauss_stable_v', per unit.

    z_lat: lateral input (N, H); u: normalised vertical input (N, H); a: (a1, ..., a10), each (H,).
    """
    a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = a
    # mu = a1 sigmoid(a2 u + a3) + a4 u + a5
    mu = a1 * torch.sigmoid(a2 * u + a3) + a4 * u + a5
    # nu = a6 sigmoid(a7 u + a8) + a9 u + a10, then a sigmoid for gauss_stable_v
    nu = a6 * torch.sigmoid(a7 * u + a8) + a9 * u + a10
    if kind == "gauss_stable_v":
        nu = torch.sigmoid(nu)
    # zhat = (z_lat - mu) nu + mu
    return (z_lat - mu) * nu + mu


def _combinator_params(p: Mapping[str, Tensor], l: int) -> Tuple[Tensor, ...]:
    return tuple(p[f"g_{l}_a{j}"] for j in range(1, 11))


def ladder(h: Tensor, p: Mapping[str, Tensor], config, normalise: Optional[Callable[[Tensor, str], Tensor]] = None,
           top_only: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
    """SPEC 5 [A1.5-A1.6 'parametric mapping']: the release's LadderAE without noise.

    h: the projected input, layer 0 (N, H0) with N = K*B, group-major; p: parameters by name.
    normalise: (a, site) -> BN(a) at the sites f_l_W, y, g_l_W (tagger_torch.normstats); None: each
    batch's own statistics for config.norm with K = config.n_groups (`BatchStatistics`).
    Returns y = h_L (N, HL), the softmax top of the encoder, and u0 = zhat_0 (N, H0), the decoder's
    bottom output; top_only: y and None, the encoder alone (`ladder_products(top_only=True)`).
    """
    L = len(config.encoder_proj) - 1
    kind = combinator_kind(config)
    gains = NORMS[config.norm].gains
    normalise = BatchStatistics(config.norm, config.n_groups) if normalise is None else normalise
    lateral = [h]  # z_0 = h, then each layer's normalised pre-activation z_l (before its bias)
    h_l = h
    for l in range(1, L + 1):
        # z_l = BN(h_{l-1} @ f_l_W)                                       (N, H_l)
        z_l = normalise(project(h_l, p[f"f_{l}_W"]), f"f_{l}_W")
        lateral.append(z_l)
        if l < L:
            # h_l = relu(z_l + f_l_b); with gains (SPEC 8) relu(f_l_c z_l + f_l_b), the lateral keeps z_l
            h_l = torch.relu((p[f"f_{l}_c"] * z_l if gains else z_l) + p[f"f_{l}_b"])
        else:
            # top: h_L = softmax(f_L_c (z_L + f_L_b)) over units
            h_l = torch.softmax(p[f"f_{L}_c"] * (z_l + p[f"f_{L}_b"]), dim=-1)
    y = h_l
    if top_only:
        return y, None
    # decoder, l = L: the vertical input is the softmax output itself (a release quirk), normalised
    zhat = combinator(lateral[L], normalise(y, "y"), _combinator_params(p, L), kind)
    for l in range(L - 1, -1, -1):
        # u_l = BN(zhat_{l+1} @ g_l_W)                                    (N, H_l)
        u = normalise(project(zhat, p[f"g_{l}_W"]), f"g_{l}_W")
        zhat = combinator(lateral[l], u, _combinator_params(p, l), kind)
    return y, zhat


def ladder_products(config, rows: int, top_only: bool = False) -> List[Tuple[int, int, int]]:
    """The (rows, inner, outer) matrix products of one pass of the Ladder: encoder f_l_W, then
    decoder g_l_W (the FLOP count of `tagger.flop_per_step`); top_only: those the top output y
    depends on, the encoder's."""
    H = config.encoder_proj
    L = len(H) - 1
    encoder = [(rows, H[l - 1], H[l]) for l in range(1, L + 1)]
    return encoder if top_only else encoder + [(rows, H[l + 1], H[l]) for l in range(L)]

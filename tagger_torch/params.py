"""Tagger's parameters by the release's names: shapes and initial values from a seed (SPEC 7).

Twin of `tagger_reference.params`. NumPy arrays; the torch module copies them in. Names and shapes,
checked against the release (CuriousAI/tagger `tagger.py`); D = prod(in_dim), H0 = encoder_proj[0]:

    v () [continuous only]  W (4D, H0)  b (H0)  z_u_W (H0, D)  c1 (D)  b1 (D)  m_u_W (H0, D)  c2 ()

(a norm with learned gains, SPEC 8, adds c (H0) after b and m_u_c (D) after m_u_W), then the
mapping's (`tagger_torch.ladder` for the release's Ladder). `c2` and `v` are 0-d arrays: the release
creates them from Python/NumPy scalars. Checking a parameter file against these shapes is
`tagger_torch.inputs.check_params`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Tuple

import numpy as np

from .norms import NORMS
from .tagger import LADDER, Mapping

Shape = Tuple[int, ...]


def tagger_shapes(config) -> "OrderedDict[str, Shape]":
    """Tagger's own parameters (tagger.py, apply_tagger: v before the iterations, then W .. c2)."""
    D, H0 = config.input_size, config.encoder_proj[0]
    shapes: "OrderedDict[str, Shape]" = OrderedDict()
    if config.input_type == "continuous":
        shapes["v"] = ()
    gains = NORMS[config.norm].gains  # c (H0) after b, m_u_c (D) after m_u_W
    shapes.update([("W", (4 * D, H0)), ("b", (H0,)), *([("c", (H0,))] if gains else []), ("z_u_W", (H0, D)),
                   ("c1", (D,)), ("b1", (D,)), ("m_u_W", (H0, D)), *([("m_u_c", (D,))] if gains else []),
                   ("c2", ())])
    return shapes


def init_tagger(config, seed: int) -> "OrderedDict[str, np.ndarray]":
    """SPEC 7: Tagger's own initial parameters for `seed`, float32, in `tagger_shapes` order.

    Tagger's `numpy.random.RandomState(seed)` draws N(0,1)/sqrt(fan_in) of shape (in, out) for W,
    z_u_W, m_u_W in that order (the first iteration of the first path builds them); biases are 0,
    the scales c1, c2, v and the gains c, m_u_c are 1.
    """
    shapes = tagger_shapes(config)
    rng = np.random.RandomState(seed)
    drawn: Dict[str, np.ndarray] = {}
    for name in ("W", "z_u_W", "m_u_W"):
        drawn[name] = rng.randn(*shapes[name]) / np.sqrt(shapes[name][0])
    for name, shape in shapes.items():
        if name not in drawn:
            drawn[name] = np.ones(shape) if name in ("c", "c1", "c2", "m_u_c", "v") else np.zeros(shape)
    return OrderedDict((name, np.asarray(drawn[name], dtype=np.float32)) for name in shapes)


def param_shapes(config, mapping: Mapping = LADDER) -> "OrderedDict[str, Shape]":
    """name -> shape of every parameter (Tagger's, then the mapping's), in the order the release
    creates them."""
    return OrderedDict([*tagger_shapes(config).items(), *mapping.shapes(config).items()])


def init_params(config, seed: int, mapping: Mapping = LADDER) -> "OrderedDict[str, np.ndarray]":
    """SPEC 7: the release's initial parameters for `seed`, float32, bit for bit: Tagger's own stream
    and the mapping's, each a `RandomState(seed)` of its own."""
    return OrderedDict([*init_tagger(config, seed).items(), *mapping.init(config, seed).items()])

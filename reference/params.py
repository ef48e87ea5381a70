"""Parameters by the release's names (SPEC 7): shapes and release-order initialisation, float32.

Twin of `tagger_torch.params`. Tagger's own parameters, with D = prod(in_dim), H0 = encoder_proj[0]:
v () (continuous inputs only), W (4D, H0), b (H0), [c (H0)], z_u_W (H0, D), c1 (D), b1 (D),
m_u_W (H0, D), [m_u_c (D)], c2 () ([.]: the learned gains of a norm with gains, SPEC 8); then the
mapping's (`tagger_reference.ladder` for the release's Ladder). Checking a parameter file against
these shapes is `tagger_torch.inputs.check_params`, shared by both twins.
"""
from collections import OrderedDict

import numpy as np

from tagger_torch.norms import NORMS

from .tagger import LADDER


def tagger_shapes(config):
    """Tagger's own parameters and their shapes, in the order the release creates them."""
    D = config.input_size
    H0 = config.encoder_proj[0]
    shapes = OrderedDict()
    if config.input_type == "continuous":
        shapes["v"] = ()
    gains = NORMS[config.norm].gains
    shapes["W"] = (4 * D, H0)
    shapes["b"] = (H0,)
    if gains:
        shapes["c"] = (H0,)
    shapes["z_u_W"] = (H0, D)
    shapes["c1"] = (D,)
    shapes["b1"] = (D,)
    shapes["m_u_W"] = (H0, D)
    if gains:
        shapes["m_u_c"] = (D,)
    shapes["c2"] = ()
    return shapes


def init_tagger(config, seed):
    """SPEC 7: Tagger's own initial parameters for `seed`, float32.

    One numpy.random.RandomState(seed) draws N(0,1) / sqrt(fan_in) of shape (in, out) for W, z_u_W,
    m_u_W in that order; biases are 0, the scales c1, c2, v and the gains c, m_u_c are 1.
    """
    params = OrderedDict()
    for name, shape in tagger_shapes(config).items():
        ones = name in ("c", "c1", "c2", "m_u_c", "v")
        params[name] = np.ones(shape, dtype=np.float32) if ones else np.zeros(shape, dtype=np.float32)
    rng = np.random.RandomState(seed)
    for name in ("W", "z_u_W", "m_u_W"):
        fan_in, fan_out = params[name].shape
        params[name] = np.float32(rng.randn(fan_in, fan_out) / np.sqrt(fan_in))
    return params


def param_shapes(config, mapping=LADDER):
    """Every parameter's name and shape (Tagger's, then the mapping's), in the order the release
    creates them."""
    shapes = tagger_shapes(config)
    shapes.update(mapping.shapes(config))
    return shapes


def init_params(config, seed, mapping=LADDER):
    """SPEC 7: the release's initial parameters for `seed`, float32, bit for bit: Tagger's own stream
    and the mapping's, each a numpy.random.RandomState(seed) of its own."""
    params = init_tagger(config, seed)
    params.update(mapping.init(config, seed))
    return dict(params)

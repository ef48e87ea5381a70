"""The parametric mapping of Tagger, the release's Ladder network (SPEC 5), in plain NumPy, float64.

Twin of `tagger_torch.ladder`: the same functions with the same contracts. Layers 0..L with sizes
encoder_proj = (H0, ..., HL); layer 0 is the input h. Parameters by the release's names: f_l_W
(H_{l-1}, H_l), f_l_b (H_l) for l = 1..L, f_L_c (H_L), g_l_a1..g_l_a10 (H_l) for l = L..0,
g_l_W (H_{l+1}, H_l) for l = L-1..0.
"""
from collections import OrderedDict

import numpy as np

from tagger_torch.errors import TaggerError
from tagger_torch.norms import NORMS

from .ops import normalize, relu, sigmoid, softmax


def ladder_shapes(config):
    """The Ladder's parameters and shapes in the order the release creates them (LadderAE.f, .g).

    A norm with learned gains (SPEC 8, 'layer-gain') adds f_l_c (H_l) after f_l_b for every relu layer
    l < L too, in the release's name of the top layer's gain.
    """
    H = config.encoder_proj
    L = len(H) - 1
    shapes = OrderedDict()
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


def init_ladder(config, seed):
    """SPEC 7: the Ladder's initial parameters for `seed`, float32, in `ladder_shapes` order.

    One numpy.random.RandomState(seed) draws N(0,1) / sqrt(fan_in) of shape (in, out): f_1_W..f_L_W,
    then the same L shapes again (the corrupted encoder's draws, discarded), then g_{L-1}_W down to
    g_0_W. The Ladder divides its decoder weights by a float32 sqrt (its fan-in is a float32 there),
    which is kept. The gains f_l_c and the combinators' a2, a7 are 1; everything else 0.
    """
    shapes = ladder_shapes(config)
    H = config.encoder_proj
    L = len(H) - 1
    params = OrderedDict()
    for name, shape in shapes.items():
        ones = (name.startswith("f_") and name.endswith("_c")) or name.endswith(("_a2", "_a7"))
        params[name] = np.ones(shape, dtype=np.float32) if ones else np.zeros(shape, dtype=np.float32)
    rng = np.random.RandomState(seed)
    for l in range(1, L + 1):
        params[f"f_{l}_W"] = np.float32(rng.randn(H[l - 1], H[l]) / np.sqrt(H[l - 1]))
    for l in range(1, L + 1):
        rng.randn(H[l - 1], H[l])  # discarded
    for l in range(L - 1, -1, -1):
        params[f"g_{l}_W"] = np.float32(rng.randn(H[l + 1], H[l]) / np.sqrt(np.float32(H[l + 1])))
    return params


def combinator_kind(config):
    """The release picks 'gauss_stable_v' for continuous and 'gauss' for binary inputs."""
    return "gauss_stable_v" if config.input_type == "continuous" else "gauss"


def combinator(z_lat, u, a, kind):
    """SPEC 5: the Ladder's vanilla combinator g(z_lat, u), per unit.

    z_lat: (N, H) lateral input (the encoder's normalised pre-activation z_l). u: (N, H) the
    normalised vertical input. a: sequence of the ten (H,) parameters g_l_a1 .. g_l_a10.
    kind: 'gauss' (binary inputs) or 'gauss_stable_v' (continuous inputs: nu goes through a sigmoid).
    Returns zhat (N, H).
    """
    a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = a
    # mu = a1 sigmoid(a2 u + a3) + a4 u + a5
    mu = a1 * sigmoid(a2 * u + a3) + a4 * u + a5
    # nu = a6 sigmoid(a7 u + a8) + a9 u + a10
    nu = a6 * sigmoid(a7 * u + a8) + a9 * u + a10
    if kind == "gauss_stable_v":
        nu = sigmoid(nu)
    elif kind != "gauss":
        raise TaggerError(f"unknown combinator '{kind}' (known: gauss, gauss_stable_v)")
    # zhat = (z_lat - mu) nu + mu
    return (z_lat - mu) * nu + mu


def ladder(h, params, config, n_groups=None):
    """SPEC 5: the release's LadderAE as Tagger configures it (no noise, no own costs).

    h: (N, H0) the input layer (N = K*B rows, group-major). params: by the release's names (module
    docstring). n_groups: K (None: config.n_groups), for statistics pooled over an example's groups.
    Returns (y, u0): y = h_L (N, H_L) the top encoder output (softmax), u0 = zhat_0 (N, H0) the
    bottom decoder output.
    """
    L = len(config.encoder_proj) - 1
    K = config.n_groups if n_groups is None else n_groups
    norm = NORMS[config.norm]  # the statistics at the mapping's sites (norm.mapping), learned gains
    kind = combinator_kind(config)

    # Encoder, l = 1..L; z_lateral[l] is the normalised pre-activation before the bias.
    z_lateral = {0: h}
    h_l = h
    for l in range(1, L + 1):
        # SPEC 5: z_l = BN(h_{l-1} @ f_l_W)   (N, H_l)
        z_l = normalize(h_l @ params[f"f_{l}_W"], norm.mapping, K)
        z_lateral[l] = z_l
        if l < L:
            # h_l = relu(z_l + f_l_b); with gains (SPEC 8, Ba et al.) relu(f_l_c * z_l + f_l_b), the lateral keeps z_l
            gained = params[f"f_{l}_c"] * z_l if norm.gains else z_l
            h_l = relu(gained + params[f"f_{l}_b"])
        else:
            # SPEC 5: top layer h_L = softmax(f_L_c * (z_L + f_L_b))
            h_l = softmax(params[f"f_{l}_c"] * (z_l + params[f"f_{l}_b"]), axis=1)
    y = h_l

    # Decoder, l = L down to 0.
    zhat = None
    for l in range(L, -1, -1):
        if l == L:
            u = y  # Quirk: the top decoder input is the softmax output itself, no weight
        else:
            u = zhat @ params[f"g_{l}_W"]  # (N, H_{l+1}) @ (H_{l+1}, H_l) -> (N, H_l)
        u = normalize(u, norm.mapping, K)
        a = [params[f"g_{l}_a{j}"] for j in range(1, 11)]
        zhat = combinator(z_lateral[l], u, a, kind)
    return y, zhat

"""Algorithm 1 of the paper (SPEC sections 1-4) in plain NumPy, float64, explicit loops.

This is the slow twin of `tagger_torch.tagger`: functions with the same name compute the same thing
(T iterations are `tagger_reference.model.forward`). Layout is group-first: a per-element array has
shape (K, B, D), K groups, B examples, D = prod(in_dim). Parameters are a dict of release names ->
arrays (see `tagger_reference.params`); the configuration is a `tagger_torch.config.TaggerConfig`.
The mapping (SPEC 4e) is a `Mapping`; the release's Ladder (`tagger_reference.ladder`) is `LADDER`.
"""
from typing import Callable, NamedTuple

import numpy as np

from tagger_torch.norms import NORMS

from .ladder import init_ladder, ladder, ladder_shapes
from .ops import binary_cross_entropy, normalize, pos, relu, sigmoid, soft_clip, softmax


class Mapping(NamedTuple):
    """A parametric mapping h (N, H0) -> (y (N, HL), u0 (N, H0)) with N = K*B rows (SPEC 4e)."""

    shapes: Callable  # config -> OrderedDict name -> shape of its parameters, in creation order
    init: Callable  # (config, seed) -> name -> float32 array: its initial parameters (release order)
    apply: Callable  # (h, params by name, config, n_groups) -> (y, u0); h holds the K = n_groups groups'
    #                  rows group-major (row k*B + b), as every (K*B, .) array here


LADDER = Mapping(ladder_shapes, init_ladder, ladder)


# ---------------------------------------------------------------------------------------------
# SPEC 1, 3: corruption and initial state
# ---------------------------------------------------------------------------------------------
def corrupt(x, corruption, config):
    """SPEC 1 [A1 init]: the corrupted input x~ from explicit noise draws.

    x: (B, D) clean input x. corruption: None (the clean path: x~ = x) or (B, D) draws:
    binary inputs: b in {0, 1}, x~ = x + b (1 - 2x) (b = 1 flips the bit; b ~ Bernoulli(input_noise));
    continuous inputs: e ~ N(0, 1), x~ = x + s e with s = input_noise.
    Returns x~ (B, D) float64.
    """
    x = np.asarray(x, dtype=np.float64)
    if corruption is None:
        return x.copy()
    corruption = np.asarray(corruption, dtype=np.float64)
    if config.input_type == "binary":
        return x + corruption * (1.0 - 2.0 * x)
    return x + config.input_noise * corruption


def initial_state(m_init, zhat_init_value):
    """SPEC 3 [A1 init]: z0 = zhat_init_value everywhere, m0 = softmax over the K groups of N(0,1) draws.

    m_init: (K, B, D) standard-normal draws. Returns (z0, m0), both (K, B, D) float64.
    """
    m_init = np.asarray(m_init, dtype=np.float64)
    z0 = np.full(m_init.shape, float(zhat_init_value))
    m0 = softmax(m_init, axis=0)
    return z0, m0


# ---------------------------------------------------------------------------------------------
# SPEC 4a, 4b: the two bottom-up signals
# ---------------------------------------------------------------------------------------------
def group_likelihood(x_tilde, z, config, v=None):
    """SPEC 4a [A1.4]: L(m)_k = q(x~ | z_k) / sum_h q(x~ | z_h), the group likelihood ratio ("m_lh").

    x_tilde: (K, B, D) or (B, D) corrupted input x~. z: (K, B, D) the groups' reconstructions z_k
    (probability space for binary inputs). v: for continuous inputs the positive variance pos(`v`)
    (scalar). Returns L (K, B, D), summing to 1 over K. Does not use m.
    """
    x_tilde = np.broadcast_to(x_tilde, z.shape)
    p = config.input_noise
    loss = np.empty_like(z)  # (K, B, D): l_k = -log q(x~ | z_k) up to a constant
    for k in range(z.shape[0]):
        if config.input_type == "binary":
            # c_k = soft_clip(z_k (1 - 2p) + p): probability of x~ = 1 after bit-flip noise
            c_k = soft_clip(z[k] * (1.0 - 2.0 * p) + p)
            loss[k] = binary_cross_entropy(c_k, x_tilde[k])
        else:
            # n = s^2 + v^2 (Quirk: v squared here, v in the cost)
            n = p ** 2 + v ** 2
            loss[k] = 0.5 * np.log(n) + (z[k] - x_tilde[k]) ** 2 / (2.0 * n)
    # L_k = exp(-l_k) / sum_h exp(-l_h), after subtracting min_k l_k
    loss = loss - loss.min(axis=0, keepdims=True)
    likelihood = np.exp(-loss)
    return likelihood / likelihood.sum(axis=0, keepdims=True)


def delta_z(x_tilde, z, m, config):
    """SPEC 4b [A1.3]: the modelling error dz_k, proportional to d log q(x~) / d z_k.

    x_tilde: (K, B, D) or (B, D) corrupted input x~. z: (K, B, D) z_k. m: (K, B, D) masks m_k.
    binary: r = 1 - 2p, xi = sum_k m_k (z_k r + p) = q(x~ = 1), dz_k = r m_k / (xi - 1 + x~),
            which is exactly d log q(x~) / d z_k for x~ in {0, 1}.
    continuous: dz_k = m_k (x~ - z_k).
    Returns dz (K, B, D).
    """
    x_tilde = np.broadcast_to(x_tilde, z.shape)
    K = z.shape[0]
    dz = np.empty_like(z)
    if config.input_type == "binary":
        p = config.input_noise
        r = 1.0 - 2.0 * p
        xi = np.zeros(z.shape[1:])  # (B, D)
        for k in range(K):
            xi += m[k] * (z[k] * r + p)
        for k in range(K):
            dz[k] = r * m[k] / (xi - 1.0 + x_tilde[k])
    else:
        for k in range(K):
            dz[k] = m[k] * (x_tilde[k] - z[k])
    return dz


# ---------------------------------------------------------------------------------------------
# SPEC 4: one TAG iteration
# ---------------------------------------------------------------------------------------------
class IterationOutput(NamedTuple):
    """What one TAG iteration returns; all (K, B, .) arrays."""

    z: np.ndarray  # (K, B, D) new z, probability space for binary inputs
    m: np.ndarray  # (K, B, D) new masks
    zpre: np.ndarray  # (K, B, D) pre-sigmoid z (binary); equal to z for continuous inputs
    m_lh: np.ndarray  # (K, B, D) L(m) of the input state
    delta_z: np.ndarray  # (K, B, D) dz of the input state
    y: np.ndarray  # (K, B, HL) the Ladder's top output


def tag_iteration(x_tilde, z, m, zpre, params, config, mapping=LADDER):
    """SPEC 4 [A1.3-A1.6]: one iteration of Tagger, the same weights at every iteration.

    x_tilde: (K, B, D) or (B, D) corrupted input x~. z: (K, B, D) z_k^(i) (probability space for
    binary inputs). m: (K, B, D) m_k^(i). zpre: (K, B, D) pre-sigmoid z of the previous iteration
    (binary inputs; z0 at i = 0); ignored for continuous inputs. params: release names, float64.
    Returns IterationOutput(z, m, zpre, m_lh, delta_z, y) of iteration i + 1.
    """
    K, B, D = z.shape
    norm = NORMS[config.norm]  # statistics at Tagger's sites (norm.tagger), learned gains (tagger_torch.norms)
    binary = config.input_type == "binary"
    v = None if binary else pos(params["v"])

    # [A1.4] L(m)
    m_lh = group_likelihood(x_tilde, z, config, v)
    # [A1.3] dz
    dz = delta_z(x_tilde, z, m, config)

    # SPEC 4c: a_in = [zt, dz, m, L] along features; zt is the pre-sigmoid z for binary inputs
    zt = zpre if binary else z
    a_in = np.concatenate([zt, dz, m, m_lh], axis=2)  # (K, B, 4D)
    a_in = a_in.reshape(K * B, 4 * D)  # (K*B, 4D)

    # [A1.5] SPEC 4d: h = relu(BN(a_in @ W) + b); with gains (SPEC 8) h = relu(c BN(a_in @ W) + b)
    a = normalize(a_in @ params["W"], norm.tagger, K)  # (K*B, H0)
    if norm.gains:
        a = params["c"] * a
    h = relu(a + params["b"])

    # SPEC 4e: the parametric mapping
    y, u0 = mapping.apply(h, params, config, K)  # (K*B, HL), (K*B, H0)

    # [A1.6] SPEC 4f: z_new = c1 BN(u0 @ z_u_W) + b1
    zu = normalize(u0 @ params["z_u_W"], norm.tagger, K)  # (K*B, D)
    z_new = (params["c1"] * zu + params["b1"]).reshape(K, B, D)
    # m_new = softmax over K of c2 BN(u0 @ m_u_W); with gains (SPEC 8) of c2 m_u_c BN(u0 @ m_u_W)
    mm = normalize(u0 @ params["m_u_W"], norm.tagger, K)  # (K*B, D)
    if norm.gains:
        mm = params["m_u_c"] * mm
    m_new = softmax((params["c2"] * mm).reshape(K, B, D), axis=0)

    zpre_new = z_new
    if binary:
        z_new = sigmoid(z_new)
    return IterationOutput(z_new, m_new, zpre_new, m_lh, dz, y.reshape(K, B, -1))

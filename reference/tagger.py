"""Algorithm 1 of the paper (SPEC sections 1-5, 8) in plain NumPy, float64, explicit loops.

This is the slow twin of `tagger_torch.model`: functions with the same name compute the same thing.
Layout is group-first: a per-element array has shape (K, B, D), K groups, B examples, D = prod(in_dim).
Parameters are a dict of release names -> arrays (see `tagger_reference.params`); the configuration
is a `tagger_torch.config.TaggerConfig`.
"""
from typing import Dict, NamedTuple

import numpy as np

from tagger_torch.errors import TaggerError

from .costs import (binary_cross_entropy, class_probabilities, classification_cost, classification_error,
                    denoising_cost, soft_clip)
from .params import check_params

NORM_EPS = 1e-10  # SPEC preamble: eps inside the square root of BN/LN


# ---------------------------------------------------------------------------------------------
# Elementwise helpers
# ---------------------------------------------------------------------------------------------
def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def relu(a):
    return np.maximum(a, 0.0)


def softmax(a, axis):
    """exp(a) / sum exp(a) along `axis`, computed after subtracting the max (as the release's softmax_n)."""
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def pos(a):
    """SPEC 2: the release's exp_inv_sinh, pos(a) = a + sqrt(a^2 + 1) > 0.

    For a <= 0 it is computed as 1 / (sqrt(a^2 + 1) - a), the same value without cancellation.
    a: the raw parameter `v` (any shape). Returns the positive variance v of eq. (1).
    """
    a = np.asarray(a, dtype=np.float64)
    y = np.sqrt(a * a + 1.0)
    return np.where(a <= 0, 1.0 / (y - a), a + y)


def normalize(a, norm):
    """SPEC preamble and 8: "BN over rows" (norm='batch') or LayerNorm (norm='layer'), no learned terms.

    a: (N, H) rows; for the Tagger's (K, B, H) tensors the rows are all K*B (group, example) pairs.
    'batch': per unit (column), (a - mean) / sqrt(var + 1e-10) over the N rows, biased variance,
             always the current minibatch's statistics.
    'layer': per row, the same over its H units.
    """
    if norm == "batch":
        axis = 0
    elif norm == "layer":
        axis = 1
    else:
        raise TaggerError(f"unknown norm '{norm}' (known: batch, layer)")
    mean = a.mean(axis=axis, keepdims=True)
    var = ((a - mean) ** 2).mean(axis=axis, keepdims=True)
    return (a - mean) / np.sqrt(var + NORM_EPS)


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
# SPEC 5: the Ladder network (the parametric mapping)
# ---------------------------------------------------------------------------------------------
def combinator(z_lat, u, a, kind):
    """SPEC 5: the Ladder's vanilla combinator g(z_lat, u), per unit.

    z_lat: (N, H) lateral input (the encoder's normalised pre-activation z_l). u: (N, H) the
    normalised vertical input. a: sequence of the ten (H,) parameters g_l_a1 .. g_l_a10.
    kind: 'gauss' (binary inputs) or 'gauss_stable_v' (continuous inputs: nu goes through a sigmoid).
      mu = a1 sigmoid(a2 u + a3) + a4 u + a5
      nu = a6 sigmoid(a7 u + a8) + a9 u + a10
      zhat = (z_lat - mu) nu + mu
    Returns zhat (N, H).
    """
    a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = a
    mu = a1 * sigmoid(a2 * u + a3) + a4 * u + a5
    nu = a6 * sigmoid(a7 * u + a8) + a9 * u + a10
    if kind == "gauss_stable_v":
        nu = sigmoid(nu)
    elif kind != "gauss":
        raise TaggerError(f"unknown combinator '{kind}' (known: gauss, gauss_stable_v)")
    return (z_lat - mu) * nu + mu


def combinator_kind(config):
    """The release picks 'gauss_stable_v' for continuous and 'gauss' for binary inputs."""
    return "gauss_stable_v" if config.input_type == "continuous" else "gauss"


def ladder(h, params, config):
    """SPEC 5: the release's LadderAE as Tagger configures it (no noise, no own costs).

    h: (N, H0) the input layer (N = K*B rows). params: f_l_W (H_{l-1}, H_l), f_l_b (H_l) for
    l = 1..L, f_L_c (H_L), g_l_W (H_{l+1}, H_l) for l = 0..L-1, g_l_a1..a10 (H_l) for l = 0..L.
    Returns (y, u0): y = h_L (N, H_L) the top encoder output (softmax), u0 = zhat_0 (N, H0) the
    bottom decoder output.
    """
    L = len(config.encoder_proj) - 1
    norm = config.norm
    kind = combinator_kind(config)

    # Encoder, l = 1..L; z_lateral[l] is the normalised pre-activation before the bias.
    z_lateral = {0: h}
    h_l = h
    for l in range(1, L + 1):
        # SPEC 5: z_l = BN(h_{l-1} @ f_l_W)   (N, H_l)
        z_l = normalize(h_l @ params[f"f_{l}_W"], norm)
        z_lateral[l] = z_l
        if l < L:
            h_l = relu(z_l + params[f"f_{l}_b"])
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
        u = normalize(u, norm)
        a = [params[f"g_{l}_a{j}"] for j in range(1, 11)]
        zhat = combinator(z_lateral[l], u, a, kind)
    return y, zhat


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


def tag_iteration(x_tilde, z, m, zpre, params, config):
    """SPEC 4 [A1.3-A1.6]: one iteration of Tagger, the same weights at every iteration.

    x_tilde: (K, B, D) or (B, D) corrupted input x~. z: (K, B, D) z_k^(i) (probability space for
    binary inputs). m: (K, B, D) m_k^(i). zpre: (K, B, D) pre-sigmoid z of the previous iteration
    (binary inputs; z0 at i = 0); ignored for continuous inputs. params: release names, float64.
    Returns IterationOutput(z, m, zpre, m_lh, delta_z, y) of iteration i + 1.
    """
    K, B, D = z.shape
    norm = config.norm
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

    # [A1.5] SPEC 4d: h = relu(BN(a_in @ W) + b)
    a = normalize(a_in @ params["W"], norm)  # (K*B, H0)
    h = relu(a + params["b"])

    # SPEC 4e: the parametric mapping
    y, u0 = ladder(h, params, config)  # (K*B, HL), (K*B, H0)

    # [A1.6] SPEC 4f: z_new = c1 BN(u0 @ z_u_W) + b1
    zu = normalize(u0 @ params["z_u_W"], norm)  # (K*B, D)
    z_new = (params["c1"] * zu + params["b1"]).reshape(K, B, D)
    # m_new = softmax over K of c2 BN(u0 @ m_u_W)
    mm = normalize(u0 @ params["m_u_W"], norm)  # (K*B, D)
    m_new = softmax((params["c2"] * mm).reshape(K, B, D), axis=0)

    zpre_new = z_new
    if binary:
        z_new = sigmoid(z_new)
    return IterationOutput(z_new, m_new, zpre_new, m_lh, dz, y.reshape(K, B, -1))


# ---------------------------------------------------------------------------------------------
# T iterations
# ---------------------------------------------------------------------------------------------
def as_float64(params: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}


def flatten_input(x, config):
    """(B, *in_dim) or (B, D) -> (B, D) float64; TaggerError on any other shape."""
    x = np.asarray(x)
    D = config.input_size
    if x.ndim < 1 or x.shape[1:] not in ((D,), tuple(config.in_dim)):
        raise TaggerError(
            f"input has shape {x.shape}, expected (B, {D}) or (B, {', '.join(map(str, config.in_dim))})")
    return x.reshape(x.shape[0], D).astype(np.float64)


def check_labels(labels, config, B):
    """labels: (B,) or (B, objects_per_sample) integers in [0, n_classes). Returns (B, M) int64."""
    if config.class_cost_x <= 0:
        raise TaggerError("labels were given but the config has no classification head (class_cost_x is 0)")
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape != (B, config.objects_per_sample):
        raise TaggerError(f"labels have shape {np.shape(labels)}, expected ({B},"
                          f" {config.objects_per_sample}) for objects_per_sample = {config.objects_per_sample}")
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
        raise TaggerError("labels must be integers")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= config.n_classes:
        raise TaggerError(f"labels must lie in [0, {config.n_classes}) (the top layer has"
                          f" {config.encoder_proj[-1]} units, the last one is 'no class')")
    return labels


def forward(params, config, x, m_init, corruption=None, labels=None, n_groups=None, n_iterations=None):
    """Algorithm 1: T TAG iterations from the initial state, with every intermediate recorded.

    params: dict of release names -> arrays (cast to float64 here). config: TaggerConfig.
    x: (B, *in_dim) or (B, D) clean input. m_init: (K, B, D) N(0,1) draws for m0 (SPEC 3).
    corruption: None (clean path) or (B, D) draws (SPEC 1). labels: None, (B,) or (B, 2) digit labels.
    n_groups, n_iterations: override K and T (evaluation); K must match m_init.
    Returns the trace dict of docs/architecture.md: z, m (T+1, K, B, D); m_lh, delta_z (T, K, B, D);
    y (T, K, B, HL); denoising_cost (T,); with labels class_cost (T,) and class_error (T,) in %.
    """
    check_params(params, config)
    params = as_float64(params)
    x = flatten_input(x, config)
    if config.input_type == "binary" and not np.all((x == 0) | (x == 1)):
        raise TaggerError("binary inputs must hold only 0 and 1 (use input_type 'continuous' otherwise)")
    B, D = x.shape
    K = n_groups or config.n_groups
    T = n_iterations or config.n_iterations
    m_init = np.asarray(m_init, dtype=np.float64)
    if m_init.shape != (K, B, D):
        raise TaggerError(f"m_init has shape {m_init.shape}, expected (K, B, D) = {(K, B, D)}")
    if corruption is not None and np.shape(corruption) != (B, D):
        raise TaggerError(f"corruption has shape {np.shape(corruption)}, expected (B, D) = {(B, D)}")
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
        out = tag_iteration(x_tilde, z, m, zpre, params, config)
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


def training_cost(params, config, x, m_init, corruption, labels=None):
    """SPEC 6: the scalar the release minimises on one minibatch.

    Mean over the T iterations of the denoising cost on the corrupted path, plus class_cost_x times
    the classification cost of the last iteration when labels are given (the release computes the
    two on separate labelled/unlabelled minibatches; here both use x).
    """
    trace = forward(params, config, x, m_init, corruption, labels)
    cost = trace["denoising_cost"].mean()
    if labels is not None and config.class_cost_x > 0:
        cost = cost + config.class_cost_x * trace["class_cost"][-1]
    return float(cost)

"""Elementwise pieces and the normalisation in plain NumPy, float64 (twin of `tagger_torch.ops`)."""
import numpy as np

from tagger_torch.constants import CLIP_EPS, NORM_EPS
from tagger_torch.errors import TaggerError
from tagger_torch.norms import STATISTICS


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


def soft_clip(a, eps=CLIP_EPS):
    """SPEC 4a: soft_clip(a) = a (1 - 2e) + e, maps [0, 1] into [e, 1 - e]."""
    return a * (1.0 - 2.0 * eps) + eps


def binary_cross_entropy(c, target):
    """-(t log c + (1 - t) log(1 - c)), elementwise (Theano's binary_crossentropy)."""
    return -(target * np.log(c) + (1.0 - target) * np.log(1.0 - c))


def normalize(a, statistics, n_groups=None):
    """SPEC preamble and 8: (a - mean) / sqrt(var + 1e-10), no learned terms, always this minibatch's values.

    a: (N, H) rows; for the Tagger's (K, B, H) tensors the rows are all K*B (group, example) pairs in
    group-major order: row k*B + b is group k of example b. mean and the biased var are taken
    'batch': per unit (column) over the N rows ("BN over rows");
    'layer': per row over its H units (LayerNorm of one (group, example) pair);
    'layer-groups': per example b over the K*H values of its rows b, B + b, ..., (K-1)B + b (n_groups = K).
    """
    if statistics == "batch":
        return _standardize(a, axis=0)
    if statistics == "layer":
        return _standardize(a, axis=1)
    if statistics != "layer-groups":
        raise TaggerError(f"unknown statistics '{statistics}' (known: {', '.join(STATISTICS)})")
    B = a.shape[0] // n_groups
    out = np.empty_like(a, dtype=np.float64)
    for b in range(B):
        rows = [k * B + b for k in range(n_groups)]  # the K groups of example b
        out[rows] = _standardize(a[rows], axis=None)  # over all (K, H) values together
    return out


def _standardize(a, axis):
    """(a - mean) / sqrt(var + 1e-10) with the mean and biased variance along `axis` (None: all of a)."""
    mean = a.mean(axis=axis, keepdims=True)
    var = ((a - mean) ** 2).mean(axis=axis, keepdims=True)
    return (a - mean) / np.sqrt(var + NORM_EPS)

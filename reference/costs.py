"""Costs (SPEC section 6) in plain NumPy, float64, twins of `tagger_torch.costs`.

denoising_cost is eq. (1) / [A1.8]; the classification head follows the release's
`compute_classification_cost_and_error`.
"""
import numpy as np

from tagger_torch.constants import MASK_EPS

from .ops import binary_cross_entropy, soft_clip


def denoising_cost(x, z, m, config, v=None):
    """SPEC 6, eq. (1) [A1.8]: -log p(x | z, m) averaged over the B*D elements.

    x: (B, D) the clean input x. z: (K, B, D) reconstructions z_k (probability space for binary
    inputs). m: (K, B, D) masks m_k. v: for continuous inputs the positive variance pos(`v`) (scalar).
    binary: xhat = sum_k m_k z_k; cost = mean BCE(soft_clip(xhat), x).
    continuous: log p_k = -0.5 (log v + (x - z_k)^2 / v) + log(m_k + 1e-5) (v, not v^2; no 2 pi);
                cost = mean of -log sum_k exp(log p_k).
    Returns a float.
    """
    K = z.shape[0]
    if config.input_type == "binary":
        xhat = np.zeros(x.shape)  # (B, D)
        for k in range(K):
            xhat += m[k] * z[k]
        err = binary_cross_entropy(soft_clip(xhat), x)
    else:
        log_p = np.empty(z.shape)  # (K, B, D)
        for k in range(K):
            log_p[k] = -0.5 * (np.log(v) + (x - z[k]) ** 2 / v) + np.log(m[k] + MASK_EPS)
        log_max = log_p.max(axis=0)  # (B, D), for stability
        err = -(np.log(np.exp(log_p - log_max).sum(axis=0)) + log_max)
    return float(err.mean())


def class_probabilities(y):
    """SPEC 6: the classification head's class probabilities P (B, C).

    y: (K, B, HL) the Ladder's top output per group; its last unit is "no class", C = HL - 1.
    p = y[..., :C], normalised over groups *and* classes per example (Quirk), then summed over K.
    """
    K = y.shape[0]
    p = y[:, :, :-1]  # (K, B, C)
    total = p.sum(axis=2).sum(axis=0)  # (B,)
    P = np.zeros(p.shape[1:])  # (B, C)
    for k in range(K):
        P += p[k] / total[:, None]
    return P


def _labels_2d(labels):
    labels = np.asarray(labels, dtype=np.int64)
    return labels[:, None] if labels.ndim == 1 else labels


def classification_cost(P, labels):
    """SPEC 6: cross-entropy of the class probabilities, mean over the batch.

    P: (B, C). labels: (B,) or (B, 1) for one object: cost = mean -log P[y];
    (B, 2) for two objects: t = (onehot(y1) + onehot(y2)) / 2, cost = mean -sum_c t_c log P_c.
    """
    labels = _labels_2d(labels)
    B, M = labels.shape
    costs = np.zeros(B)
    for n in range(B):
        target = np.zeros(P.shape[1])
        for j in range(M):
            target[labels[n, j]] += 1.0 / M
        costs[n] = -(target * np.log(P[n])).sum()
    return float(costs.mean())


def classification_error(P, labels):
    """SPEC 6: classification error in %, mean over the batch.

    P: (B, C). labels: (B,) or (B, 1): wrong when argmax P != y.
    (B, 2): if y1 == y2, wrong unless the top-1 class is y1; else the error is
    1 - |{top-2 classes} x {y1, y2} matches| / 2. Ties in P go to the lower class index.
    """
    labels = _labels_2d(labels)
    B, M = labels.shape
    errors = np.zeros(B)
    for n in range(B):
        ranked = np.argsort(-P[n], kind="stable")  # classes, most probable first
        if M == 1:
            errors[n] = float(ranked[0] != labels[n, 0])
        elif labels[n, 0] == labels[n, 1]:
            errors[n] = float(ranked[0] != labels[n, 0])
        else:
            matches = sum(int(t == c) for t in ranked[:M] for c in labels[n])
            errors[n] = 1.0 - matches / M
    return float(errors.mean() * 100.0)

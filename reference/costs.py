"""Costs and metrics (SPEC section 6) in plain NumPy, float64.

denoising_cost is eq. (1) / [A1.8]; the classification head follows the release's
`compute_classification_cost_and_error`; ami_score follows its `ami_score_op`.
"""
import numpy as np
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

SOFT_CLIP_EPS = 1e-4  # soft_clip epsilon of the binary cross-entropy
MASK_EPS = 1e-5  # added to m_k inside the log of the continuous cost
AMI_MASK_THRESHOLD = 0.9  # pixels whose largest true mask value is above this count for AMI/ARI


def soft_clip(a, eps=SOFT_CLIP_EPS):
    """SPEC 4a: soft_clip(a) = a (1 - 2e) + e, maps [0, 1] into [e, 1 - e]."""
    return a * (1.0 - 2.0 * eps) + eps


def binary_cross_entropy(c, target):
    """-(t log c + (1 - t) log(1 - c)), elementwise (Theano's binary_crossentropy)."""
    return -(target * np.log(c) + (1.0 - target) * np.log(1.0 - c))


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


def _labelings(masks_true, m):
    """Per example, (true labels, predicted labels) of the pixels whose largest true mask value > 0.9."""
    masks_true = np.asarray(masks_true)
    m = np.asarray(m)
    B = masks_true.shape[0]
    masks_true = masks_true.reshape(B, masks_true.shape[1], -1)  # (B, G, D)
    m = m.reshape(m.shape[0], m.shape[1], -1)  # (K, B, D)
    for n in range(B):
        s = masks_true[n]  # (G, D)
        keep = s.max(axis=0) > AMI_MASK_THRESHOLD
        yield s.argmax(axis=0)[keep], m[:, n, :].argmax(axis=0)[keep]


def ami_score(masks_true, m):
    """SPEC 6 (Table 1): adjusted mutual information per example, scikit-learn 0.17's normalisation.

    masks_true: (B, G, D) (or (B, G, *in_dim)) true masks; true label of a pixel = argmax over G.
    m: (K, B, D) (or (K, B, *in_dim)) predicted masks; predicted label = argmax_k m_k.
    Only pixels whose largest true mask value is > 0.9 count.
    Returns (B,) scores of adjusted_mutual_info_score(..., average_method='max').
    """
    return np.array([adjusted_mutual_info_score(t, p, average_method="max") for t, p in _labelings(masks_true, m)])


def ari_score(masks_true, m):
    """Adjusted Rand index per example on the same pixels and labels as `ami_score`. Returns (B,)."""
    return np.array([adjusted_rand_score(t, p) for t, p in _labelings(masks_true, m)])

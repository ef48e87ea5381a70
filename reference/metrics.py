"""Grouping scores (SPEC 6, Table 1) in plain NumPy: one scikit-learn call per sample.

Twin of `tagger_torch.metrics` (the vectorised scores used by evaluation); ami_score follows the
release's `ami_score_op`.
"""
import numpy as np
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from tagger_torch.constants import MASK_THRESHOLD


def _labelings(masks_true, m):
    """Per example, (true labels, predicted labels) of the pixels whose largest true mask value > 0.9."""
    masks_true = np.asarray(masks_true)
    m = np.asarray(m)
    B = masks_true.shape[0]
    masks_true = masks_true.reshape(B, masks_true.shape[1], -1)  # (B, G, D)
    m = m.reshape(m.shape[0], m.shape[1], -1)  # (K, B, D)
    for n in range(B):
        s = masks_true[n]  # (G, D)
        keep = s.max(axis=0) > MASK_THRESHOLD
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

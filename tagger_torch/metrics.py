"""Grouping scores per sample, vectorised: AMI and ARI of SPEC 6 on whole batches at once.

Twin of `tagger_reference.metrics` (`ami_score`, `ari_score`: one scikit-learn call per sample).

The paper scores a grouping with scikit-learn's `adjusted_mutual_info_score` (0.17, which normalises
by max(H(U), H(V)), i.e. today's `average_method='max'`) called once per image. Here one call scores
a batch: the (G, K) contingency table of every image is built with one `bincount`, and MI, the
entropies, the expected MI (EMI) and the pair counts of ARI are array expressions over the batch, in
float64, following scikit-learn's formulas term by term (including its special cases), so the
scores equal `adjusted_mutual_info_score(..., average_method='max')` and `adjusted_rand_score`
to rounding (tests/test_metrics.py compares them).

Pixels (SPEC 6, release `nn.ami_score_op`): the true label of a pixel is the argmax over the data's
mask groups, the predicted label is argmax_k m_k, and only pixels whose largest true mask value is
> 0.9 count (this drops the background and overlaps of Shapes, whose mask rows are 1/3 there).
NumPy only: evaluation takes the argmax on the device and hands (B, D) labels over.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .constants import MASK_THRESHOLD

_EPS = np.finfo(np.float64).eps


def true_labels_from_masks(masks_true: np.ndarray, threshold: float = MASK_THRESHOLD):
    """True group of each pixel and whether it counts (SPEC 6).

    masks_true: (B, G, D) or (B, G, *in_dim), the data file's `mask` source (group g owns a pixel
    where its value is 1; shared pixels hold 1/G). Returns labels (B, D) int64 = argmax over G and
    valid (B, D) bool = max over G > threshold.
    """
    masks_true = np.asarray(masks_true)
    masks_true = masks_true.reshape(masks_true.shape[0], masks_true.shape[1], -1)  # (B, G, D)
    return masks_true.argmax(axis=1), masks_true.max(axis=1) > threshold


def contingency_tables(labels_true, labels_pred, valid, n_true: int, n_pred: int) -> np.ndarray:
    """Per-sample contingency tables over the valid pixels.

    labels_true (B, D) in [0, n_true), labels_pred (B, D) in [0, n_pred), valid (B, D) bool.
    Returns C (B, n_true, n_pred) int64, C[b, i, j] = #valid pixels of sample b with true i and
    predicted j. Labels that never occur give all-zero rows/columns, which every score ignores.
    """
    labels_true = np.asarray(labels_true, dtype=np.int64)
    labels_pred = np.asarray(labels_pred, dtype=np.int64)
    valid = np.asarray(valid, dtype=bool)
    B = labels_true.shape[0]
    cell = (np.arange(B)[:, None] * n_true + labels_true) * n_pred + labels_pred  # (B, D)
    counts = np.bincount(cell[valid], minlength=B * n_true * n_pred)
    return counts.reshape(B, n_true, n_pred)


def _entropy(counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """H of the labelling with cluster sizes counts (B, R) (zeros ignored), natural log.

    As scikit-learn's `_entropy`: -sum p (log c - log n); 0 for a single cluster; 1 for no samples
    (never used: empty samples are special-cased before).
    """
    c = counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(c > 0, (c / n[:, None]) * (np.log(np.where(c > 0, c, 1.0)) - np.log(n)[:, None]), 0.0)
    return -terms.sum(axis=1)


def _mutual_information(C: np.ndarray, a: np.ndarray, b: np.ndarray, n: np.ndarray) -> np.ndarray:
    """MI of each table C (B, R, S) with row sums a (B, R), column sums b (B, S), totals n (B,).

    scikit-learn's `mutual_info_score`, term by term: each non-zero cell contributes
    p_ij (log n_ij - log n) + p_ij (log n + log n - log(a_i b_j)); terms below eps become 0, and
    the sum is clipped at 0.
    """
    Cf = C.astype(np.float64)
    nz = C > 0
    nf = n.astype(np.float64)[:, None, None]  # (B, 1, 1)
    outer = (a[:, :, None] * b[:, None, :]).astype(np.float64)  # (B, R, S), int64 product first
    with np.errstate(divide="ignore", invalid="ignore"):
        log_outer = -np.log(np.where(nz, outer, 1.0)) + np.log(nf) + np.log(nf)
        p = Cf / nf
        terms = p * (np.log(np.where(nz, Cf, 1.0)) - np.log(nf)) + p * log_outer
    terms = np.where(nz & (np.abs(terms) >= _EPS), terms, 0.0)
    return np.clip(terms.sum(axis=(1, 2)), 0.0, None)


def _expected_mutual_information(a: np.ndarray, b: np.ndarray, n: np.ndarray) -> np.ndarray:
    """EMI under the hypergeometric model of random labellings with the given marginals.

    a (B, R) row sums, b (B, S) column sums, n (B,) totals (zero rows/columns contribute nothing).
    scikit-learn's `expected_mutual_information`, with the three nested loops (i, j, n_ij) turned
    into one (B, R, S, J) array, J = max cluster size + 1:
        EMI = sum_ij sum_{n_ij = max(1, a_i + b_j - N)}^{min(a_i, b_j)}
              n_ij / N * log(N n_ij / (a_i b_j)) * a_i! b_j! (N-a_i)! (N-b_j)!
              / (N! n_ij! (a_i-n_ij)! (b_j-n_ij)! (N-a_i-b_j+n_ij)!)
    """
    B = a.shape[0]
    J = int(max(a.max(initial=0), b.max(initial=0))) + 1
    ai = a[:, :, None, None]  # (B, R, 1, 1)
    bj = b[:, None, :, None]  # (B, 1, S, 1)
    N = n[:, None, None, None]  # (B, 1, 1, 1)
    nij = np.arange(J)[None, None, None, :]  # (1, 1, 1, J)
    inside = (nij >= np.maximum(1, ai + bj - N)) & (nij <= np.minimum(ai, bj))  # (B, R, S, J)
    # log k! for every integer argument that occurs (all are in [0, max N])
    log_fact = gammaln(np.arange(int(n.max(initial=0)) + 2, dtype=np.float64) + 1)
    lf = lambda k: log_fact[np.clip(k, 0, len(log_fact) - 1)]  # noqa: E731  (outside cells: masked)
    log_pos = lambda k: np.log(np.maximum(k, 1).astype(np.float64))  # noqa: E731
    term1 = nij / np.maximum(N, 1).astype(np.float64)
    term2 = (log_pos(N) + log_pos(nij)) - log_pos(ai) - log_pos(bj)
    gln = (lf(ai) + lf(bj) + lf(N - ai) + lf(N - bj) - (lf(nij) + lf(N))
           - lf(ai - nij) - lf(bj - nij) - lf(N - ai - bj + nij))
    terms = np.where(inside, term1 * term2 * np.exp(np.where(inside, gln, -np.inf)), 0.0)
    return terms.reshape(B, -1).sum(axis=1)


def ami_from_contingency(C: np.ndarray) -> np.ndarray:
    """AMI with max normalisation of each table C (B, R, S): (MI - EMI) / (max(H_U, H_V) - EMI).

    Special cases as scikit-learn 1.x `adjusted_mutual_info_score(average_method='max')`: 1.0 when
    both labellings have one cluster or there are no samples; 0.0 when exactly one of them has a
    single cluster; numerator and denominator kept at least eps away from 0.
    """
    C = np.asarray(C, dtype=np.int64)
    a, b = C.sum(axis=2), C.sum(axis=1)  # (B, R), (B, S)
    n = a.sum(axis=1)  # (B,)
    r, s = (a > 0).sum(axis=1), (b > 0).sum(axis=1)  # clusters present
    mi = _mutual_information(C, a, b, n)
    emi = _expected_mutual_information(a, b, n)
    n_safe = np.maximum(n, 1).astype(np.float64)
    normalizer = np.maximum(_entropy(a, n_safe), _entropy(b, n_safe))
    den = normalizer - emi
    den = np.where(den < 0, np.minimum(den, -_EPS), np.maximum(den, _EPS))
    num = mi - emi
    num = np.where(num < 0, np.minimum(num, -_EPS), np.maximum(num, _EPS))
    ami = num / den
    ami = np.where((r == 1) ^ (s == 1), 0.0, ami)
    return np.where(((r == 1) & (s == 1)) | ((r == 0) & (s == 0)), 1.0, ami)


def ari_from_contingency(C: np.ndarray) -> np.ndarray:
    """Adjusted Rand index of each table C (B, R, S) from the pair confusion counts.

    As scikit-learn's `adjusted_rand_score`: tp = sum n_ij^2 - N, fp = sum_j b_j^2 - sum n_ij^2,
    fn = sum_i a_i^2 - sum n_ij^2, tn = N^2 - tp - fp - fn - N (all pairs counted twice, int64);
    ARI = 2 (tp tn - fn fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn)), 1.0 when fn = fp = 0.
    """
    C = np.asarray(C, dtype=np.int64)
    a, b = C.sum(axis=2), C.sum(axis=1)
    n = a.sum(axis=1)
    sum_squares = (C * C).sum(axis=(1, 2))
    tp = sum_squares - n
    fp = (b * b).sum(axis=1) - sum_squares
    fn = (a * a).sum(axis=1) - sum_squares
    tn = n * n - fp - fn - sum_squares
    num = 2.0 * (tp * tn - fn * fp)
    den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    with np.errstate(divide="ignore", invalid="ignore"):
        ari = num / den
    return np.where((fn == 0) & (fp == 0), 1.0, ari)


def grouping_tables(masks_true: np.ndarray, pred_labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Contingency tables (B, G, K) of SPEC 6 from the data's masks and the predicted groups.

    masks_true (B, G, D) (or (B, G, *in_dim)); pred_labels (B, D) = argmax_k m_k in [0, n_groups).
    """
    labels, valid = true_labels_from_masks(masks_true)
    n_true = np.asarray(masks_true).shape[1]
    return contingency_tables(labels, pred_labels, valid, n_true, n_groups)


def ami_score(masks_true: np.ndarray, m: np.ndarray) -> np.ndarray:
    """SPEC 6 AMI of each sample: masks_true (B, G, D) from the data, m (K, B, D) Tagger's masks.

    Returns (B,) float64; the paper reports its mean over the test split at T = 5.
    """
    m = np.asarray(m)
    pred = m.reshape(m.shape[0], m.shape[1], -1).argmax(axis=0)  # (B, D)
    return ami_from_contingency(grouping_tables(masks_true, pred, m.shape[0]))


def ari_score(masks_true: np.ndarray, m: np.ndarray) -> np.ndarray:
    """ARI of each sample on the same pixels as `ami_score`: masks_true (B, G, D), m (K, B, D)."""
    m = np.asarray(m)
    pred = m.reshape(m.shape[0], m.shape[1], -1).argmax(axis=0)  # (B, D)
    return ari_from_contingency(grouping_tables(masks_true, pred, m.shape[0]))

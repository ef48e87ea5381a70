"""The vectorised AMI/ARI of tagger_torch.metrics against scikit-learn, one sample at a time."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from tagger_torch.metrics import (ami_from_contingency, ami_score, ari_from_contingency, ari_score,
                                  contingency_tables, true_labels_from_masks)


def sklearn_scores(labels_true, labels_pred, valid):
    ami = [adjusted_mutual_info_score(t[v], p[v], average_method="max")
           for t, p, v in zip(labels_true, labels_pred, valid)]
    ari = [adjusted_rand_score(t[v], p[v]) for t, p, v in zip(labels_true, labels_pred, valid)]
    return np.array(ami), np.array(ari)


def scores(labels_true, labels_pred, valid, n_true, n_pred):
    C = contingency_tables(labels_true, labels_pred, valid, n_true, n_pred)
    return ami_from_contingency(C), ari_from_contingency(C)


def assert_like_sklearn(labels_true, labels_pred, valid, n_true, n_pred):
    ami, ari = scores(labels_true, labels_pred, valid, n_true, n_pred)
    ami_ref, ari_ref = sklearn_scores(labels_true, labels_pred, valid)
    np.testing.assert_allclose(ami, ami_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ari, ari_ref, rtol=0, atol=1e-12)
    return ami, ari


@pytest.mark.parametrize("G,K,D", [(3, 4, 400), (2, 2, 30), (4, 3, 784), (3, 6, 7)])
def test_random_and_partly_correlated_labelings_match_sklearn(G, K, D):
    rng = np.random.RandomState(G * 100 + K)
    B = 40
    t = rng.randint(0, G, (B, D))
    p = rng.randint(0, K, (B, D))
    agree = rng.rand(B, D) < np.linspace(0, 1, B)[:, None]  # from independent to (almost) equal
    p = np.where(agree, t % K, p)
    valid = rng.rand(B, D) < 0.7
    assert_like_sklearn(t, p, valid, G, K)


def test_edge_cases_match_sklearn():
    D = 20
    t = np.tile(np.arange(D) % 3, (8, 1))
    p = t.copy()
    valid = np.ones((8, D), bool)
    p[1] = (t[1] + 1) % 3  # permuted groups: still perfect
    t[2] = 0  # single true cluster, several predicted
    p[3] = 2  # several true clusters, one predicted
    t[4] = 1
    p[4] = 0  # one cluster each
    valid[5] = False  # all pixels masked out
    valid[6] = False
    valid[6, 4] = True  # a single pixel
    p[7] = np.arange(D) % 4  # unrelated split
    ami, ari = assert_like_sklearn(t, p, valid, 3, 4)
    np.testing.assert_allclose(ami[:2], 1.0, rtol=0, atol=1e-12)
    assert ari[0] == ari[1] == 1.0
    assert ami[2] == ami[3] == 0.0
    assert ami[4] == ami[5] == ami[6] == 1.0


def test_large_clusters_stay_finite():
    # N = 784 pixels in two clusters: the factorials of the expected MI would overflow outside logs
    t = np.zeros((2, 784), int)
    t[:, 400:] = 1
    p = t.copy()
    p[1, :50] = 1
    ami, _ = assert_like_sklearn(t, p, np.ones_like(t, bool), 2, 2)
    assert np.all(np.isfinite(ami))


def test_masks_threshold_and_layouts():
    # Shapes-like masks (B, G, D): owned pixels one-hot, background and overlaps 1/3 everywhere
    B, G, D = 5, 3, 16
    rng = np.random.RandomState(1)
    owner = rng.randint(-1, G, (B, D))  # -1: background
    masks = np.full((B, G, D), 1.0 / 3, np.float32)
    for g in range(G):
        masks[:, g][owner >= 0] = (owner[owner >= 0] == g)
    labels, valid = true_labels_from_masks(masks)
    assert np.array_equal(valid, owner >= 0)
    assert np.array_equal(labels[valid], owner[valid])
    # m (K, B, D): a perfect grouping up to a permutation of groups, and a random one
    K = 4
    perfect = np.eye(K, dtype=np.float32)[(owner + 2) % K].transpose(2, 0, 1)  # (K, B, D)
    np.testing.assert_allclose(ami_score(masks, perfect), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ari_score(masks, perfect), 1.0, rtol=0, atol=1e-12)
    m = rng.rand(K, B, D)
    pred = m.argmax(0)
    ami_ref, ari_ref = sklearn_scores(owner, pred, owner >= 0)
    np.testing.assert_allclose(ami_score(masks, m), ami_ref, atol=1e-12)
    np.testing.assert_allclose(ari_score(masks, m), ari_ref, atol=1e-12)
    # MNIST layout (B, G, 1, H, W) with m (K, B, 1, H, W) gives the same scores
    masks_img = masks.reshape(B, G, 1, 4, 4)
    np.testing.assert_array_equal(ami_score(masks_img, m.reshape(K, B, 1, 4, 4)), ami_score(masks, m))

"""Freq20-1MNIST / Freq20-2MNIST (SPEC 9) on a small synthetic MNIST."""
import numpy as np
import pytest

from tagger_torch.data.freq20 import (TEST_SEED, TRAIN_SEED, compose, generate_freq20, generate_run,
                                      make_textures, shift_images, texture_frequencies)
from tagger_torch.errors import TaggerError


@pytest.fixture(scope="module")
def textures():
    return make_textures()


@pytest.fixture(scope="module", params=[1, 2])
def run(request, synthetic_mnist, textures):
    m = synthetic_mnist
    return request.param, generate_run(m.train_images, m.train_labels, request.param, TRAIN_SEED, textures,
                                       progress=False)


def test_texture_frequencies():
    freqs = texture_frequencies()
    assert freqs.shape == (20, 2)
    assert freqs[:4].tolist() == [[4, 0], [4, 4], [4, 8], [4, 12]]
    assert freqs[16:].tolist() == [[37, 4], [37, 8], [37, 12], [37, 16]]  # row 4 raised by 4


def test_textures_are_single_sinusoids(textures):
    assert textures.shape == (20, 38, 38) and textures.dtype == np.float32
    np.testing.assert_array_equal(textures.min(axis=(1, 2)), 0)
    np.testing.assert_array_equal(textures.max(axis=(1, 2)), 1)
    spectrum = np.abs(np.fft.fft2(textures - textures.mean(axis=(1, 2), keepdims=True)))
    for i, (u, v) in enumerate(texture_frequencies()):
        peaks = {tuple(p) for p in np.argwhere(spectrum[i] > 0.01 * spectrum[i].max())}
        assert peaks == {(u, v), ((-u) % 38, (-v) % 38)}
    np.testing.assert_array_equal(make_textures(), textures)


def test_shift_images():
    x = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5)
    np.testing.assert_array_equal(shift_images(x, 2)[:, 2:, 2:], x[:, :3, :3])
    np.testing.assert_array_equal(shift_images(x, -2)[:, :3, :3], x[:, 2:, 2:])
    assert not shift_images(x, 2)[:, :2].any() and not shift_images(x, -2)[:, :, 3:].any()


def test_shapes_and_dtypes(run):
    n_digits, r = run
    n = len(r.features)
    assert r.features.shape == (n, 1, 28, 28) and r.features.dtype == np.float32
    assert r.mask.shape == (n, n_digits + 1, 1, 28, 28) and r.mask.dtype == np.float32
    assert r.codes.shape == (n, n_digits + 1) and r.codes.dtype == np.int64
    assert r.targets.shape == (n, n_digits) and r.targets.dtype == np.int64


def test_masks_sum_to_one(run):
    _, r = run
    np.testing.assert_allclose(r.mask.sum(axis=1), 1, atol=1e-6)
    assert r.mask.min() >= 0 and r.mask.max() <= 1


def test_codes_distinct_per_image(run):
    _, r = run
    assert r.codes.min() >= 0 and r.codes.max() < 20
    assert all(len(set(row)) == len(row) for row in r.codes)
    assert len({tuple(row) for row in r.codes}) > 1


def test_recomposing_crops_and_masks_gives_features(run, textures, synthetic_mnist):
    n_digits, r = run
    crops = np.array([[textures[c, y:y + 28, x:x + 28] for c, (y, x) in zip(codes, offsets)]
                      for codes, offsets in zip(r.codes, r.crop_offsets)])  # (N, M+1, 28, 28)
    assert r.crop_offsets.min() >= 0 and r.crop_offsets.max() <= 10
    # the mixture of the layers' textures under the soft masks is the image
    np.testing.assert_allclose((r.mask[:, :, 0] * crops).sum(axis=1), r.features[:, 0], atol=2e-6)
    # and back-to-front compositing of the digit layers (b down-right, then a up-left) reproduces it exactly
    digits = synthetic_mnist.train_images.astype(np.float32) / np.float32(255)
    if n_digits == 1:
        layers = digits[:, None]
    else:
        layers = np.stack([shift_images(digits[r.digit_sources[:, 0]], 2),
                           shift_images(digits[r.digit_sources[:, 1]], -2)], 1)
    image, masks = compose(crops, layers)
    np.testing.assert_array_equal(image, r.features[:, 0])
    np.testing.assert_array_equal(masks, r.mask[:, :, 0])


def test_digit_layers_are_the_mnist_digits(run, synthetic_mnist):
    n_digits, r = run
    digits = synthetic_mnist.train_images.astype(np.float32) / np.float32(255)
    labels = synthetic_mnist.train_labels
    if n_digits == 1:
        np.testing.assert_array_equal(r.mask[:, 1, 0], digits)  # unshifted
        np.testing.assert_array_equal(r.targets[:, 0], labels)
        return
    bottom, top = r.digit_sources[:, 0], r.digit_sources[:, 1]
    np.testing.assert_array_equal(r.mask[:, 2, 0], shift_images(digits[top], -2))  # digit a, up-left, on top
    assert sorted(bottom) == sorted(top) == list(range(len(digits)))  # two permutations
    pairs = np.stack([labels[bottom], labels[top]], 1)
    coin_one = np.all(r.targets == pairs, axis=1)  # (label b, label a)
    coin_zero = np.all(r.targets == pairs[:, ::-1], axis=1)  # (label a, label b)
    assert np.all(coin_one | coin_zero)
    assert np.any(coin_one & ~coin_zero) and np.any(coin_zero & ~coin_one)


def test_draw_order_of_the_release(synthetic_mnist, textures):
    """2 digits: permutation, permutation, coin, then one choice of M+1 textures per image."""
    m = synthetic_mnist
    n = len(m.test_images)
    r = generate_run(m.test_images, m.test_labels, 2, TEST_SEED, textures, progress=False)
    rng = np.random.RandomState(TEST_SEED)
    perm_a, perm_b = rng.permutation(n), rng.permutation(n)
    rng.binomial(1, 0.5, n)
    codes = [rng.choice(np.arange(20), size=3, replace=False) for _ in range(n)]
    np.testing.assert_array_equal(r.digit_sources, np.stack([perm_b, perm_a], 1))
    np.testing.assert_array_equal(r.codes, codes)
    crop = np.random.RandomState(598)
    np.testing.assert_array_equal(r.crop_offsets, [[crop.randint(0, 11, 2) for _ in range(3)] for _ in range(n)])


def test_splits_and_prefix(synthetic_mnist):
    splits = generate_freq20(synthetic_mnist, 1, n_train=60, n_valid=20, n_test=30, progress=False)
    assert {s: len(a["features"]) for s, a in splits.items()} == {"train": 60, "valid": 20, "test": 30}
    assert list(splits["train"]) == ["features", "mask", "codes", "targets"]
    shorter = generate_freq20(synthetic_mnist, 1, n_train=40, n_valid=10, n_test=5, progress=False)
    for source in ("features", "mask", "codes", "targets"):  # 1 digit: a smaller file is a prefix
        np.testing.assert_array_equal(shorter["train"][source], splits["train"][source][:40])
        np.testing.assert_array_equal(shorter["test"][source], splits["test"][source][:5])
    again = generate_freq20(synthetic_mnist, 1, n_train=60, n_valid=20, n_test=30, progress=False)
    for split in splits:
        for source in splits[split]:
            np.testing.assert_array_equal(again[split][source], splits[split][source])


def test_too_many_images_requested(synthetic_mnist):
    with pytest.raises(TaggerError, match="exceeds the 90 MNIST training digits"):
        generate_freq20(synthetic_mnist, 2, n_train=80, n_valid=20, n_test=5, progress=False)
    with pytest.raises(TaggerError, match="exceeds the 30 MNIST test digits"):
        generate_freq20(synthetic_mnist, 2, n_train=10, n_valid=10, n_test=31, progress=False)


def naive_release_prepare_data(n_digits, feats, labs, textures, shift, rng):
    """A literal twin of the release notebook's prepare_data / create_masks / compose, with its
    5-D arrays, coin-swapped masks and z_order indexing. feats (N, 1, 28, 28) k/255, labs (N, 1)."""
    n = feats.shape[0]
    all_n = np.arange(n)
    mask = np.float32(feats / 1.)
    if n_digits == 1:
        masks, mask_idxs, coin = mask[:, None], [np.arange(n)], None
    else:
        perm = [rng.permutation(n), rng.permutation(n)]
        m1 = shift_images(mask[perm[0]][:, 0], -2)[:, None]
        m2 = shift_images(mask[perm[1]][:, 0], 2)[:, None]
        m_12 = np.concatenate([m1[:, None], m2[:, None]], 1)
        m_21 = np.concatenate([m2[:, None], m1[:, None]], 1)
        coin = np.reshape(rng.binomial(1, 0.5, n), (n, 1, 1, 1, 1))
        masks, mask_idxs = np.float32(coin * m_12 + (1 - coin) * m_21), perm
    mask_idxs = np.array(mask_idxs)
    if n_digits == 2:
        z_order = np.transpose(np.reshape(np.concatenate([coin, 1 - coin], axis=1), (n, 2)), (1, 0))
    else:
        z_order = np.zeros((1, n), dtype=int)
        for i in all_n:
            z_order[:, i] = rng.permutation(np.arange(1))
    targets = np.concatenate([labs[mask_idxs[(z_order[i], all_n)]] for i in range(n_digits)], 1)
    shuffled = np.concatenate([masks[(all_n, z_order[i])][:, :, None] for i in range(n_digits)], 1)
    code_idxs = np.array([rng.choice(np.arange(20), size=n_digits + 1, replace=False) for _ in all_n])
    rnd = np.random.RandomState(598)
    codes = np.zeros((n, n_digits + 1, 1, 28, 28))
    for i in range(n):
        for j in range(n_digits + 1):
            xs, ys = rnd.randint(0, 11, 2)
            codes[i, j, 0] = textures[code_idxs[i, j], xs:xs + 28, ys:ys + 28]
    out_masks = np.ones(codes.shape, dtype="float32")
    res = codes[:, 0]
    for i in range(1, n_digits + 1):
        m = shuffled[:, i - 1]
        out_masks[:, i] = m
        for j in range(i):
            out_masks[:, j] *= 1 - m
        res = m * codes[:, i] + (1 - m) * res
    return res.astype(np.float32), targets.astype(np.int64), code_idxs.astype(np.int64), out_masks


@pytest.mark.parametrize("n_digits", [1, 2])
def test_matches_the_release_procedure(n_digits, synthetic_mnist, textures):
    m = synthetic_mnist
    feats = (m.train_images.astype(np.float32) / np.float32(255))[:, None]
    expected = naive_release_prepare_data(n_digits, feats, m.train_labels[:, None], textures, n_digits == 2,
                                          np.random.RandomState(TRAIN_SEED))
    r = generate_run(m.train_images, m.train_labels, n_digits, TRAIN_SEED, textures, progress=False)
    for got, want in zip((r.features, r.targets, r.codes, r.mask), expected):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)

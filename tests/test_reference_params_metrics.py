"""The NumPy reference (tagger_reference): hand-made AMI/ARI, release-order initialisation, parameter
files, Adam, and finite differences of the training cost."""
import numpy as np
import pytest
from scipy.stats import hypergeom

import tagger_reference as ref
from tagger_torch.errors import TaggerError
from tagger_torch.inputs import check_params, read_params
from test_reference import CONFIGS, make_batch, perturbed_params


# --------------------------------------------------------------------------------------------
# AMI / ARI on hand-made labelings
# --------------------------------------------------------------------------------------------
def one_hot_masks(labels, n):
    """(B, D) integer labels -> (B, n, D) one-hot masks."""
    return (np.arange(n)[None, :, None] == labels[:, None, :]).astype(np.float64)


def predicted_masks(labels, K):
    """(B, D) predicted labels -> (K, B, D) soft masks whose argmax is the label."""
    return 0.1 / K + 0.8 * np.moveaxis(one_hot_masks(labels, K), 1, 0)


def expected_ami_max(true, pred):
    """AMI with max(H(U), H(V)) normalisation, from the definition (hypergeometric expected MI)."""
    N = len(true)
    a = np.array([np.sum(true == u) for u in np.unique(true)])
    b = np.array([np.sum(pred == v) for v in np.unique(pred)])
    joint = np.array([[np.sum((true == u) & (pred == v)) for v in np.unique(pred)] for u in np.unique(true)])
    nz = joint > 0
    mi = np.sum(joint[nz] / N * np.log(N * joint[nz] / np.outer(a, b)[nz]))
    emi = 0.0
    for ai in a:
        for bj in b:
            for nij in range(max(1, ai + bj - N), min(ai, bj) + 1):
                emi += nij / N * np.log(N * nij / (ai * bj)) * hypergeom.pmf(nij, N, ai, bj)
    h = lambda c: -np.sum(c / N * np.log(c / N))  # noqa: E731
    return (mi - emi) / (max(h(a), h(b)) - emi)


def test_ami_perfect_permuted_and_random():
    rng = np.random.RandomState(0)
    true = rng.randint(0, 3, size=(2, 60))
    masks = one_hot_masks(true, 3)
    assert np.allclose(ref.ami_score(masks, predicted_masks(true, 3)), 1.0)
    permuted = np.array([2, 0, 1])[true]  # group ids need not match
    assert np.allclose(ref.ami_score(masks, predicted_masks(permuted, 4)), 1.0)
    assert np.allclose(ref.ari_score(masks, predicted_masks(permuted, 4)), 1.0)
    random = rng.randint(0, 4, size=(2, 60))
    scores = ref.ami_score(masks, predicted_masks(random, 4))
    assert scores.shape == (2,) and np.all(np.abs(scores) < 0.1)
    assert np.all(np.abs(ref.ari_score(masks, predicted_masks(random, 4))) < 0.1)


def test_ami_uses_max_normalisation():
    true = np.array([[0] * 8 + [1] * 8])
    pred = np.array([[0] * 8 + [1] * 4 + [2] * 4])  # split one true group in two
    score = ref.ami_score(one_hot_masks(true, 2), predicted_masks(pred, 3))[0]
    assert score == pytest.approx(expected_ami_max(true[0], pred[0]), rel=1e-9)
    from sklearn.metrics import adjusted_mutual_info_score
    assert score < adjusted_mutual_info_score(true[0], pred[0]) - 0.02  # today's 'arithmetic' default is higher


def test_ami_counts_only_confidently_owned_pixels():
    """Pixels whose largest true mask value is <= 0.9 (background, overlaps: 1/3 each) are ignored."""
    true = np.array([[0] * 10 + [1] * 10 + [2] * 10])
    masks = one_hot_masks(true, 3)
    masks[0, :, 20:] = 1.0 / 3.0  # group 2 is "background"
    masks[0, :, 19] = [0.05, 0.9, 0.05]  # exactly 0.9 does not count
    pred = true.copy()
    pred[0, 19:] = 0  # wrong on the ignored pixels only
    assert ref.ami_score(masks, predicted_masks(pred, 3))[0] == pytest.approx(1.0)
    assert ref.ari_score(masks, predicted_masks(pred, 3))[0] == pytest.approx(1.0)
    pred[0, 18] = 0  # wrong on a counted pixel
    assert ref.ami_score(masks, predicted_masks(pred, 3))[0] < 0.95


def test_ami_accepts_image_shaped_masks():
    true = np.random.RandomState(1).randint(0, 2, size=(3, 16))
    masks = one_hot_masks(true, 2).reshape(3, 2, 1, 4, 4)
    m = predicted_masks(true, 2).reshape(2, 3, 1, 4, 4)
    np.testing.assert_allclose(ref.ami_score(masks, m), 1.0)


# --------------------------------------------------------------------------------------------
# Parameters: release-order init, loading, Adam
# --------------------------------------------------------------------------------------------
def test_init_params_release_order_and_values():
    config = CONFIGS["continuous-batch-1obj"]
    seed = 7
    params = ref.init_params(config, seed)
    shapes = ref.param_shapes(config)
    assert list(params) == list(shapes)
    for name, value in params.items():
        assert value.dtype == np.float32 and value.shape == shapes[name], name
    D, H = config.input_size, config.encoder_proj
    # Tagger's stream: W, z_u_W, m_u_W
    rng = np.random.RandomState(seed)
    for name, (fan_in, fan_out) in (("W", (4 * D, H[0])), ("z_u_W", (H[0], D)), ("m_u_W", (H[0], D))):
        np.testing.assert_array_equal(params[name], np.float32(rng.randn(fan_in, fan_out) / np.sqrt(fan_in)))
    # The Ladder's stream: f_1_W, f_2_W, two discarded draws, g_1_W, g_0_W
    rng = np.random.RandomState(seed)
    np.testing.assert_array_equal(params["f_1_W"], np.float32(rng.randn(H[0], H[1]) / np.sqrt(H[0])))
    np.testing.assert_array_equal(params["f_2_W"], np.float32(rng.randn(H[1], H[2]) / np.sqrt(H[1])))
    rng.randn(H[0], H[1]), rng.randn(H[1], H[2])
    np.testing.assert_array_equal(params["g_1_W"], np.float32(rng.randn(H[2], H[1]) / np.sqrt(np.float32(H[2]))))
    np.testing.assert_array_equal(params["g_0_W"], np.float32(rng.randn(H[1], H[0]) / np.sqrt(np.float32(H[1]))))
    for name in ("c1", "c2", "v", "f_2_c", "g_0_a2", "g_2_a7"):
        np.testing.assert_array_equal(params[name], 1.0)
    for name in ("b", "b1", "f_1_b", "f_2_b", "g_0_a1", "g_1_a6", "g_2_a10"):
        np.testing.assert_array_equal(params[name], 0.0)
    assert "v" not in ref.init_params(CONFIGS["binary-batch"], seed)
    assert "f_1_c" not in params and "g_2_W" not in params
    for name, value in ref.init_params(config, seed).items():
        np.testing.assert_array_equal(value, params[name])  # same seed, same start


def test_parameter_files_drop_release_bookkeeping(tmp_path):
    """The reference reads parameter files as both command lines do: tagger_torch.inputs."""
    config = CONFIGS["continuous-batch-1obj"]
    params = ref.init_params(config, 0)
    extra = {"counter": np.float32(1), "counter_max": np.float32(10),
             "shared_f_1_bn_mean_clean": np.zeros(5, np.float32), "shared_f_2_bn_var_clean": np.zeros(4, np.float32)}
    path = tmp_path / "trained_params.npz"
    np.savez_compressed(path, **params, **extra)
    loaded = check_params(read_params(str(path)), ref.param_shapes(config))
    assert sorted(loaded) == sorted(params)
    np.savez(path, **{**params, "c2": np.ones(1, np.float32)})  # a scalar saved as (1,)
    assert check_params(read_params(str(path)), ref.param_shapes(config))["c2"].shape == ()
    np.savez(path, **{**params, "W_extra": np.ones(2)})
    with pytest.raises(TaggerError, match="unknown parameter name.*W_extra"):
        check_params(read_params(str(path)), ref.param_shapes(config))
    np.savez(path, **params)
    with pytest.raises(TaggerError, match="parameter W has shape"):
        check_params(read_params(str(path)), ref.param_shapes(config.replace(in_dim=[9])))
    del params["f_2_c"]
    np.savez(path, **params)
    with pytest.raises(TaggerError, match="missing parameter.*f_2_c"):
        check_params(read_params(str(path)), ref.param_shapes(config))


def test_adam_step_blocks_rule():
    lr = 0.01
    params = {"a": np.array([1.0, -2.0]), "s": np.array(0.5)}
    g1 = {"a": np.array([0.5, -1.0]), "s": np.array(2.0)}
    g2 = {"a": np.array([-0.25, 3.0]), "s": np.array(0.0)}
    p1, state = ref.adam_step(params, g1, None, lr)
    p2, state = ref.adam_step(p1, g2, state, lr)
    assert state["t"] == 2
    # by hand: t = 1: beta = 0.9, m = 0.1 g, v = 0.001 g^2, lr_1 = lr sqrt(0.001) / 0.1
    for name in params:
        g, h = g1[name], g2[name]
        m1, v1 = 0.1 * g, 0.001 * g ** 2
        e1 = params[name] - lr * np.sqrt(0.001) / 0.1 * m1 / (np.sqrt(v1) + 1e-8)
        np.testing.assert_allclose(p1[name], e1, rtol=1e-14)
        beta = 0.9 * (1 - 1e-8)
        m2, v2 = beta * m1 + (1 - beta) * h, 0.999 * v1 + 0.001 * h ** 2
        e2 = e1 - lr * np.sqrt(1 - 0.999 ** 2) / (1 - 0.81) * m2 / (np.sqrt(v2) + 1e-8)
        np.testing.assert_allclose(p2[name], e2, rtol=1e-14)
    # the first step moves every nonzero-gradient parameter by ~lr
    np.testing.assert_allclose(np.abs(p1["a"] - params["a"]), lr, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------------------------
def test_numerical_grad_of_a_known_function():
    rng = np.random.RandomState(0)
    A, b = rng.randn(3, 3), rng.randn(3)
    params = {"x": rng.randn(3), "s": np.array(0.7)}
    f = lambda p: p["x"] @ A @ p["x"] + np.sin(p["s"]) * (b @ p["x"])  # noqa: E731
    grads = ref.numerical_grad(f, params)
    np.testing.assert_allclose(grads["x"], (A + A.T) @ params["x"] + np.sin(0.7) * b, rtol=1e-8)
    assert grads["s"] == pytest.approx(np.cos(0.7) * (b @ params["x"]), rel=1e-8)
    assert list(ref.numerical_grad(f, params, names=["s"])) == ["s"]


@pytest.mark.parametrize("name", ["binary-batch", "continuous-layer-2obj"])
def test_training_cost_gradient_reaches_every_parameter(name):
    """The finite-difference gradient of the training cost is consistent (a directional derivative
    agrees with it) and nonzero for every parameter, a1..a10 included."""
    base = CONFIGS[name]
    config = base.replace(in_dim=[6], n_groups=2, n_iterations=2, encoder_proj=[4, 3, base.encoder_proj[-1]])
    params = perturbed_params(config, seed=2)
    x, m_init, corruption, labels = make_batch(config, B=4, seed=2)
    f = lambda p: ref.training_cost(p, config, x, m_init, corruption, labels)  # noqa: E731
    grads = ref.numerical_grad(f, params)
    for pname, grad in grads.items():
        assert np.abs(grad).max() > 1e-8, pname
    direction = {k: np.random.RandomState(9).randn(*v.shape) for k, v in params.items()}
    h = 1e-5
    shifted = lambda s: f({k: params[k] + s * h * direction[k] for k in params})  # noqa: E731
    directional = (shifted(1) - shifted(-1)) / (2 * h)
    assert directional == pytest.approx(sum(np.sum(grads[k] * direction[k]) for k in params), rel=1e-5)
    if labels is not None:
        trace = ref.forward(params, config, x, m_init, corruption, labels)
        assert f(params) == pytest.approx(trace["denoising_cost"].mean() + 0.1 * trace["class_cost"][-1])

"""The NumPy reference (tagger_reference): properties that hold whatever the weights, the bottom-up
signals and costs against their definitions, the classification head on hand-made cases (metrics,
parameters, Adam and finite differences: test_reference_params_metrics.py)."""
import numpy as np
import pytest
from scipy.stats import norm

import tagger_reference as ref
from parity_tests.cases import perturbed_params as perturbed
from tagger_reference.ops import normalize, sigmoid
from tagger_torch.config import TaggerConfig
from tagger_torch.errors import TaggerError

CONFIGS = {
    "binary-batch": TaggerConfig(in_dim=(12,), input_type="binary", n_groups=3, n_iterations=2,
                                 encoder_proj=(6, 5, 4), input_noise=0.2, zhat_init_value=0.26),
    "binary-layer": TaggerConfig(in_dim=(3, 4), input_type="binary", n_groups=2, n_iterations=3,
                                 encoder_proj=(5, 4), input_noise=0.1, zhat_init_value=0.3, norm="layer"),
    "continuous-batch-1obj": TaggerConfig(in_dim=(1, 2, 4), input_type="continuous", n_groups=4, n_iterations=2,
                                          encoder_proj=(7, 5, 4), input_noise=0.2, zhat_init_value=0.5,
                                          class_cost_x=0.1, objects_per_sample=1),
    "continuous-layer-2obj": TaggerConfig(in_dim=(10,), input_type="continuous", n_groups=2, n_iterations=3,
                                          encoder_proj=(6, 4, 5), input_noise=0.18, zhat_init_value=0.5,
                                          class_cost_x=0.1, objects_per_sample=2, norm="layer"),
}


def perturbed_params(config, seed=0, scale=0.5):
    """parity_tests' perturbed release init (every parameter, a1..a10 included), as float64."""
    return {name: np.float64(value) for name, value in perturbed(config, seed, scale).items()}


def make_batch(config, B=5, seed=0, corrupted=True):
    """x (B, *in_dim), m_init (K, B, D), corruption (B, D) or None, labels or None."""
    rng = np.random.RandomState(seed)
    D = config.input_size
    if config.input_type == "binary":
        x = (rng.rand(B, D) < 0.4).astype(np.float32)
        corruption = (rng.rand(B, D) < config.input_noise).astype(np.float32)
    else:
        x = rng.rand(B, D).astype(np.float32)
        corruption = rng.randn(B, D)
    m_init = rng.randn(config.n_groups, B, D)
    labels = None
    if config.class_cost_x > 0:
        labels = rng.randint(0, config.n_classes, size=(B, config.objects_per_sample))
    return x.reshape((B,) + config.in_dim), m_init, corruption if corrupted else None, labels


# --------------------------------------------------------------------------------------------
# Properties of one forward pass, on perturbed parameters
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_forward_trace_shapes_and_normalisation(name):
    config = CONFIGS[name]
    params = perturbed_params(config)
    x, m_init, corruption, labels = make_batch(config)
    trace = ref.forward(params, config, x, m_init, corruption, labels)
    K, B, D, T, HL = config.n_groups, x.shape[0], config.input_size, config.n_iterations, config.encoder_proj[-1]
    assert trace["z"].shape == trace["m"].shape == (T + 1, K, B, D)
    assert trace["m_lh"].shape == trace["delta_z"].shape == (T, K, B, D)
    assert trace["y"].shape == (T, K, B, HL)
    assert trace["denoising_cost"].shape == (T,)
    assert (labels is None) == ("class_cost" not in trace)
    for array in trace.values():
        assert array.dtype == np.float64 and np.all(np.isfinite(array))
    # m and L(m) sum to one over the groups; the top layer is a softmax
    np.testing.assert_allclose(trace["m"].sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(trace["m_lh"].sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(trace["y"].sum(axis=3), 1.0, atol=1e-12)
    # the initial state (SPEC 3)
    np.testing.assert_allclose(trace["z"][0], config.zhat_init_value)
    np.testing.assert_allclose(trace["m"][0], np.exp(m_init) / np.exp(m_init).sum(axis=0))
    # the state moves: the perturbed decoder is not the release's all-zero one
    assert np.abs(trace["z"][1] - trace["z"][0]).max() > 1e-3
    if config.input_type == "binary":
        assert np.all((trace["z"] > 0) & (trace["z"] < 1))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trace_recomputes_from_its_own_parts(name):
    """m_lh and delta_z of iteration i are those of the state before it; costs are of the state after it."""
    config = CONFIGS[name]
    params = perturbed_params(config, seed=3)
    x, m_init, corruption, labels = make_batch(config, seed=3)
    trace = ref.forward(params, config, x, m_init, corruption, labels)
    x_flat = x.reshape(x.shape[0], -1).astype(np.float64)
    x_tilde = ref.corrupt(x_flat, corruption, config)
    v = None if config.input_type == "binary" else ref.pos(params["v"])
    for i in range(config.n_iterations):
        np.testing.assert_allclose(trace["m_lh"][i], ref.group_likelihood(x_tilde, trace["z"][i], config, v))
        np.testing.assert_allclose(trace["delta_z"][i], ref.delta_z(x_tilde, trace["z"][i], trace["m"][i], config))
        assert trace["denoising_cost"][i] == pytest.approx(
            ref.denoising_cost(x_flat, trace["z"][i + 1], trace["m"][i + 1], config, v), rel=1e-12)
        if labels is not None:
            P = ref.class_probabilities(trace["y"][i])
            assert trace["class_cost"][i] == pytest.approx(ref.classification_cost(P, labels), rel=1e-12)
            assert trace["class_error"][i] == ref.classification_error(P, labels)


def test_flat_and_shaped_inputs_agree():
    config = CONFIGS["continuous-batch-1obj"]
    params = perturbed_params(config)
    x, m_init, corruption, labels = make_batch(config)
    a = ref.forward(params, config, x, m_init, corruption, labels)
    b = ref.forward(params, config, x.reshape(x.shape[0], -1), m_init, corruption, labels)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_release_init_decoder():
    """At release init a2 = a7 = 1 and the other a's 0, so mu = 0 and nu = 0: every 'gauss' combinator
    outputs 0 and a binary model's z, m are constant. 'gauss_stable_v' has nu = sigmoid(0) = 1/2:
    a continuous model's decoder passes half its lateral input through."""
    for config in (CONFIGS["binary-batch"], CONFIGS["continuous-batch-1obj"]):
        params = {k: v.astype(np.float64) for k, v in ref.init_params(config, 1).items()}
        h = np.random.RandomState(0).rand(6, config.encoder_proj[0])
        y, u0 = ref.ladder(h, params, config)
        if config.input_type == "binary":
            np.testing.assert_array_equal(u0, 0.0)
            x, m_init, corruption, _ = make_batch(config)
            trace = ref.forward(params, config, x, m_init, corruption)
            np.testing.assert_array_equal(trace["z"][1:], 0.5)
            np.testing.assert_allclose(trace["m"][1:], 1.0 / config.n_groups)
        else:
            np.testing.assert_allclose(u0, 0.5 * h)


def test_binary_path_feeds_pre_sigmoid_z_continuous_path_does_not():
    """Quirk: the binary mapping input is the previous pre-sigmoid z; the continuous one is z itself."""
    for config, changes in ((CONFIGS["binary-batch"], True), (CONFIGS["continuous-batch-1obj"], False)):
        params = perturbed_params(config)
        x, m_init, corruption, _ = make_batch(config)
        x_tilde = ref.corrupt(x.reshape(x.shape[0], -1), corruption, config)
        z, m = ref.initial_state(m_init, config.zhat_init_value)
        a = ref.tag_iteration(x_tilde, z, m, z, params, config)
        other_zpre = z + np.random.RandomState(1).rand(*z.shape)  # a constant shift would be normalised away
        b = ref.tag_iteration(x_tilde, z, m, other_zpre, params, config)
        assert (np.abs(a.z - b.z).max() > 1e-6) == changes
        if config.input_type == "binary":
            np.testing.assert_allclose(a.z, sigmoid(a.zpre))


def test_overrides_of_groups_and_iterations():
    config = CONFIGS["binary-batch"]
    params = perturbed_params(config)
    x, _, corruption, _ = make_batch(config)
    m_init = np.random.RandomState(5).randn(5, x.shape[0], config.input_size)
    trace = ref.forward(params, config, x, m_init, corruption, n_groups=5, n_iterations=4)
    assert trace["z"].shape == (5, 5, x.shape[0], config.input_size)
    with pytest.raises(TaggerError, match="m_init"):
        ref.forward(params, config, x, m_init, corruption)  # K = 3 from the config


# --------------------------------------------------------------------------------------------
# The bottom-up signals and the costs against their definitions
# --------------------------------------------------------------------------------------------
def random_state(K=3, B=4, D=7, seed=0, binary=True):
    rng = np.random.RandomState(seed)
    z = rng.uniform(0.05, 0.95, (K, B, D)) if binary else rng.randn(K, B, D)
    m = ref.initial_state(rng.randn(K, B, D), 0.0)[1]
    x = (rng.rand(B, D) < 0.5).astype(np.float64) if binary else rng.rand(B, D)
    return z, m, x


def test_binary_delta_z_is_the_derivative_of_log_q():
    """SPEC 4b: dz_k = d log q(x~) / d z_k with q(x~ = 1) = sum_k m_k (z_k (1 - 2p) + p)."""
    config = CONFIGS["binary-batch"]
    p = config.input_noise
    z, m, x_tilde = random_state()

    def log_q(arrays):
        xi = (m * (arrays["z"] * (1 - 2 * p) + p)).sum(axis=0)
        return np.sum(x_tilde * np.log(xi) + (1 - x_tilde) * np.log(1 - xi))

    numeric = ref.numerical_grad(log_q, {"z": z})["z"]
    np.testing.assert_allclose(ref.delta_z(x_tilde, z, m, config), numeric, rtol=1e-7, atol=1e-9)


def test_continuous_delta_z_is_m_times_the_residual():
    """SPEC 4b: dz_k = m_k (x~ - z_k) = m_k d log N(x~; z_k, 1) / d z_k."""
    config = CONFIGS["continuous-batch-1obj"]
    z, m, x_tilde = random_state(binary=False)
    dz = ref.delta_z(x_tilde, z, m, config)
    np.testing.assert_allclose(dz, m * (x_tilde - z), rtol=1e-14)
    numeric = ref.numerical_grad(lambda a: np.sum(norm.logpdf(x_tilde, a["z"], 1.0)), {"z": z})["z"]
    np.testing.assert_allclose(dz, m * numeric, rtol=1e-6, atol=1e-7)


def test_group_likelihood_is_the_normalised_q():
    """SPEC 4a: L_k = q(x~ | z_k) / sum_h q(x~ | z_h)."""
    binary = CONFIGS["binary-batch"]
    z, m, x_tilde = random_state()
    p, e = binary.input_noise, 1e-4
    c = (z * (1 - 2 * p) + p) * (1 - 2 * e) + e
    q = c ** x_tilde * (1 - c) ** (1 - x_tilde)
    np.testing.assert_allclose(ref.group_likelihood(x_tilde, z, binary), q / q.sum(axis=0), rtol=1e-12)

    continuous = CONFIGS["continuous-batch-1obj"]
    z, m, x_tilde = random_state(binary=False)
    v = ref.pos(0.3)
    q = norm.pdf(x_tilde, z, np.sqrt(continuous.input_noise ** 2 + v ** 2))  # Quirk: s^2 + v^2
    np.testing.assert_allclose(ref.group_likelihood(x_tilde, z, continuous, v), q / q.sum(axis=0), rtol=1e-12)


def test_continuous_denoising_cost_is_minus_log_eq1():
    """SPEC 6: -log sum_k (m_k + 1e-5) N(x; z_k, v), less the 0.5 log(2 pi) the release leaves out."""
    config = CONFIGS["continuous-batch-1obj"]
    z, m, x = random_state(binary=False)
    for v in (0.7, ref.pos(1.0), 3.0):
        mixture = ((m + 1e-5) * norm.pdf(x, z, np.sqrt(v))).sum(axis=0)
        expected = np.mean(-np.log(mixture)) - 0.5 * np.log(2 * np.pi)
        assert ref.denoising_cost(x, z, m, config, v) == pytest.approx(expected, rel=1e-12)


def test_binary_denoising_cost_is_bce_of_the_mixture():
    config = CONFIGS["binary-batch"]
    z, m, x = random_state()
    xhat = (m * z).sum(axis=0) * (1 - 2e-4) + 1e-4
    expected = -np.mean(np.where(x == 1, np.log(xhat), np.log(1 - xhat)))
    assert ref.denoising_cost(x, z, m, config) == pytest.approx(expected, rel=1e-12)
    # a perfect, confident reconstruction costs -log(1 - 1e-4)
    one_hot = np.zeros_like(m)
    one_hot[0] = 1.0
    assert ref.denoising_cost(x, np.repeat(x[None], 3, 0), one_hot, config) == pytest.approx(-np.log(1 - 1e-4))


def test_pos_is_stable_and_positive():
    a = np.array([-1e8, -3.0, -1e-3, 0.0, 1e-3, 1.0, 3.0])
    expected = a + np.sqrt(a ** 2 + 1)
    got = ref.pos(a)
    assert np.all(got > 0)
    np.testing.assert_allclose(got[1:], expected[1:], rtol=1e-12)
    assert got[0] == pytest.approx(0.5e-8, rel=1e-6)  # the naive formula gives 0 here
    assert ref.pos(1.0) == pytest.approx(1 + np.sqrt(2))


def test_normalize_batch_and_layer():
    a = np.random.RandomState(0).randn(9, 4) * 3 + 2
    batch, layer = normalize(a, "batch"), normalize(a, "layer")
    np.testing.assert_allclose(batch.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(batch.var(axis=0), 1, rtol=1e-8)
    np.testing.assert_allclose(layer.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(layer.var(axis=1), 1, rtol=1e-8)
    np.testing.assert_array_equal(normalize(np.ones((3, 2)), "batch"), 0.0)  # eps keeps constants finite


def test_combinators():
    rng = np.random.RandomState(0)
    z_lat, u = rng.randn(4, 3), rng.randn(4, 3)
    a = [rng.randn(3) for _ in range(10)]
    mu = a[0] * sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    nu = a[5] * sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    np.testing.assert_allclose(ref.combinator(z_lat, u, a, "gauss"), (z_lat - mu) * nu + mu)
    np.testing.assert_allclose(ref.combinator(z_lat, u, a, "gauss_stable_v"), (z_lat - mu) * sigmoid(nu) + mu)


def test_corrupt():
    binary, continuous = CONFIGS["binary-batch"], CONFIGS["continuous-batch-1obj"]
    x = np.array([[0.0, 1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(ref.corrupt(x, np.array([[1, 1, 0, 0]]), binary), [[1, 0, 0, 1]])
    np.testing.assert_array_equal(ref.corrupt(x, None, binary), x)
    np.testing.assert_allclose(ref.corrupt(x, np.array([[1.0, -1.0, 0.5, 0.0]]), continuous), [[0.2, 0.8, 0.1, 1.0]])


# --------------------------------------------------------------------------------------------
# Classification head on hand-made cases
# --------------------------------------------------------------------------------------------
def test_class_probabilities_normalise_over_groups_and_classes():
    y = np.zeros((2, 1, 4))  # K = 2, B = 1, three classes + "no class"
    y[0, 0] = [0.5, 0.2, 0.1, 0.2]  # the "no class" unit is dropped
    y[1, 0] = [0.0, 0.1, 0.0, 0.9]
    P = ref.class_probabilities(y)
    np.testing.assert_allclose(P, [[0.5 / 0.9, 0.3 / 0.9, 0.1 / 0.9]])


def test_classification_one_object():
    P = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3]])
    labels = np.array([0, 2, 0, 1])
    assert ref.classification_error(P, labels) == pytest.approx(25.0)
    assert ref.classification_error(P, labels[:, None]) == pytest.approx(25.0)
    expected = -np.mean(np.log([0.7, 0.6, 0.3, 0.5]))
    assert ref.classification_cost(P, labels) == pytest.approx(expected, rel=1e-12)


def test_classification_two_objects():
    P = np.array([[0.5, 0.3, 0.1, 0.1],   # top-2 {0, 1}
                  [0.5, 0.3, 0.1, 0.1],
                  [0.5, 0.3, 0.1, 0.1],
                  [0.1, 0.6, 0.25, 0.05],  # top-1 = 1
                  [0.1, 0.6, 0.25, 0.05]])
    labels = np.array([[1, 0],   # both found: 0
                       [0, 3],   # one of two: 50
                       [2, 3],   # none: 100
                       [1, 1],   # equal digits, top-1 right: 0
                       [2, 2]])  # equal digits, top-1 wrong (top-2 would hold it): 100
    per_sample = [0, 50, 100, 0, 100]
    assert ref.classification_error(P, labels) == pytest.approx(np.mean(per_sample))
    for n in range(5):
        assert ref.classification_error(P[n:n + 1], labels[n:n + 1]) == pytest.approx(per_sample[n])
    # t = (onehot(y1) + onehot(y2)) / 2
    expected = -np.mean([0.5 * np.log(0.3) + 0.5 * np.log(0.5), 0.5 * np.log(0.5) + 0.5 * np.log(0.1),
                         0.5 * np.log(0.1) + 0.5 * np.log(0.1), np.log(0.6), np.log(0.25)])
    assert ref.classification_cost(P, labels) == pytest.approx(expected, rel=1e-12)


def test_labels_and_binary_inputs_are_checked():
    config = CONFIGS["continuous-layer-2obj"]
    params = perturbed_params(config)
    x, m_init, corruption, labels = make_batch(config)
    with pytest.raises(TaggerError, match="shape"):
        ref.forward(params, config, x, m_init, corruption, labels[:, 0])  # one digit for a 2-object head
    with pytest.raises(TaggerError, match=r"\[0, 4\)"):
        ref.forward(params, config, x, m_init, corruption, labels + 4)
    binary = CONFIGS["binary-batch"]
    x, m_init, corruption, _ = make_batch(binary)
    with pytest.raises(TaggerError, match="class_cost_x"):
        ref.forward(perturbed_params(binary), binary, x, m_init, corruption, np.zeros(5, int))
    with pytest.raises(TaggerError, match="only 0 and 1"):
        ref.forward(perturbed_params(binary), binary, x * 0.5, m_init, corruption)

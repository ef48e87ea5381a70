"""Fast tests of the PyTorch port on its own: shapes, invariants, parameters by name, the optimiser.

Agreement with the NumPy reference is the parity suite's job (parity_tests/).
"""
import numpy as np
import pytest
import torch

from parity_tests.cases import perturbed_params
from tagger_torch.config import PRESETS, TaggerConfig
from tagger_torch.errors import TaggerError
from tagger_torch.inputs import read_params
from tagger_torch.model import Tagger
from tagger_torch.ops import pos
from tagger_torch.optim import BlocksAdam
from tagger_torch.params import init_params, param_shapes
from tagger_torch.tagger import group_likelihood, initial_state

BINARY = TaggerConfig(in_dim=(3, 4), encoder_proj=(8, 6, 5), n_groups=3, n_iterations=2, seed=7)
CONTINUOUS = BINARY.replace(input_type="continuous", zhat_init_value=0.5, objects_per_sample=2,
                            class_cost_x=0.1, encoder_proj=(8, 6, 7, 11))


def perturbed(config, seed=0, scale=0.5):
    """A model whose every parameter is moved off the release init (which makes the decoder output 0)."""
    return Tagger(config, params=perturbed_params(config, seed, scale))


def inputs(config, B=5, seed=1):
    gen = torch.Generator().manual_seed(seed)
    if config.input_type == "binary":
        return (torch.rand((B,) + config.in_dim, generator=gen) < 0.3).float()
    return torch.rand((B,) + config.in_dim, generator=gen)


@pytest.mark.parametrize("config", [BINARY, CONTINUOUS, BINARY.replace(norm="layer")],
                         ids=["binary", "continuous", "layernorm"])
def test_forward_shapes_and_invariants(config):
    model = perturbed(config)
    B, K, T, D, HL = 5, config.n_groups, config.n_iterations, config.input_size, config.encoder_proj[-1]
    labels = torch.tensor([[0, 1], [2, 2], [3, 1], [1, 0], [1, 3]])[:, :config.objects_per_sample]
    out = model(inputs(config, B), generator=torch.Generator().manual_seed(3), labels=labels, record=True)
    shapes = {"z": (T + 1, K, B, D), "m": (T + 1, K, B, D), "m_lh": (T, K, B, D),
              "delta_z": (T, K, B, D), "y": (T, K, B, HL), "denoising_cost": (T,),
              "class_cost": (T,), "class_error": (T,)}
    assert {k: tuple(v.shape) for k, v in out.trace.items()} == shapes
    assert out.z.shape == out.m.shape == (K, B, D) and out.y.shape == (K, B, HL)
    for key in ("m", "m_lh"):
        torch.testing.assert_close(out.trace[key].sum(dim=1), torch.ones(out.trace[key].shape[:1] + (B, D)))
    torch.testing.assert_close(out.trace["y"].sum(-1), torch.ones(T, K, B))
    assert torch.all(out.trace["z"][0] == config.zhat_init_value)
    if config.input_type == "binary":
        assert out.z.min() > 0 and out.z.max() < 1
    assert torch.all(torch.isfinite(out.denoising_cost)) and torch.all(torch.isfinite(out.class_cost))
    assert torch.all((out.class_error >= 0) & (out.class_error <= 100))
    expected = out.denoising_cost.mean() + config.class_cost_x * out.class_cost[-1]
    torch.testing.assert_close(out.cost, expected)
    out.cost.backward()
    assert all(p.grad is not None and torch.all(torch.isfinite(p.grad)) for p in model.parameters())


def test_release_init_decoder_outputs_zero():
    # at the release init every combinator has a2 = a7 = 1, others 0: zhat = 0, so z = sigmoid(0)
    out = Tagger(BINARY)(inputs(BINARY), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.z, torch.full_like(out.z, 0.5))
    torch.testing.assert_close(out.denoising_cost, torch.full((2,), float(np.log(2))))


def test_state_dict_names_are_the_release_names():
    model = Tagger(CONTINUOUS)
    L = len(CONTINUOUS.encoder_proj) - 1
    names = list(model.state_dict())
    assert names == list(param_shapes(CONTINUOUS))
    assert {"W", "b", "z_u_W", "m_u_W", "c1", "b1", "c2", "v", f"f_{L}_c", "g_0_a10"} <= set(names)
    assert "v" not in Tagger(BINARY).state_dict() and "f_1_c" not in names
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == dict(param_shapes(CONTINUOUS))
    assert model.c2.shape == () and model.v.shape == ()
    D, H = CONTINUOUS.input_size, CONTINUOUS.encoder_proj
    assert model.W.shape == (4 * D, H[0]) and model.g_0_W.shape == (H[1], H[0])


def test_init_params_release_order():
    config = BINARY
    params = init_params(config, seed=11)
    assert all(a.dtype == np.float32 for a in params.values())
    D, H = config.input_size, config.encoder_proj
    tagger_rng, ladder_rng = np.random.RandomState(11), np.random.RandomState(11)
    for name, (fan_in, fan_out) in [("W", (4 * D, H[0])), ("z_u_W", (H[0], D)), ("m_u_W", (H[0], D))]:
        np.testing.assert_array_equal(params[name], np.float32(tagger_rng.randn(fan_in, fan_out) / np.sqrt(fan_in)))
    for l in (1, 2):
        np.testing.assert_array_equal(params[f"f_{l}_W"], np.float32(ladder_rng.randn(H[l - 1], H[l]) / np.sqrt(H[l - 1])))
    ladder_rng.randn(H[0] * H[1] + H[1] * H[2])  # the corrupted encoder's discarded draws
    for l in (1, 0):
        expected = ladder_rng.randn(H[l + 1], H[l]) / np.sqrt(np.float32(H[l + 1]))
        np.testing.assert_array_equal(params[f"g_{l}_W"], np.float32(expected))
    assert np.all(params["b"] == 0) and np.all(params["c1"] == 1) and params["c2"] == 1
    assert np.all(params["g_0_a2"] == 1) and np.all(params["g_0_a7"] == 1) and np.all(params["g_2_a1"] == 0)
    assert np.all(params["f_2_c"] == 1) and np.all(params["f_1_b"] == 0)


def test_init_from_seed_is_deterministic():
    a, b, c = Tagger(BINARY, seed=3), Tagger(BINARY, seed=3), Tagger(BINARY, seed=4)
    for name, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[name])
    assert not torch.equal(a.W, c.W)
    assert torch.equal(Tagger(BINARY).W, Tagger(BINARY, seed=BINARY.seed).W)  # default: config.seed


def test_npz_and_state_dict_round_trip(tmp_path):
    model = perturbed(CONTINUOUS, seed=2)
    path = tmp_path / "p.npz"
    model.save_npz(str(path))
    loaded = read_params(str(path))
    assert set(loaded) == set(param_shapes(CONTINUOUS)) and all(a.dtype == np.float32 for a in loaded.values())
    again = Tagger(CONTINUOUS, params=loaded)
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name])
    fresh = Tagger(CONTINUOUS)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.g_0_a3, model.g_0_a3)


def test_loading_names_every_mismatch():
    params = init_params(BINARY, 0)
    params["W"] = np.zeros((3, 3), np.float32)
    params["g_1_a4"] = np.zeros(2, np.float32)
    del params["c2"]
    params["bogus"] = np.zeros(1)
    with pytest.raises(TaggerError) as e:
        Tagger(BINARY).load_params(params)
    message = str(e.value)
    assert "\n" not in message
    for part in ("W has shape (3, 3)", "(48, 8)", "g_1_a4 has shape (2,)", "missing parameter(s) c2", "bogus"):
        assert part in message


def test_release_book_keeping_entries_are_ignored():
    params = init_params(BINARY, 0)
    params.update(counter=np.float32(1), counter_max=np.float32(10),
                  shared_f_1_bn_mean_clean=np.zeros(6), shared_f_2_bn_var_clean=np.zeros(5))
    assert set(Tagger(BINARY, params=params).state_dict()) == set(param_shapes(BINARY))


def test_subset_loading_for_stage_two():
    stage1 = BINARY.replace(input_type="continuous", encoder_proj=(8, 6, 5))
    stage2 = stage1.replace(encoder_proj=(8, 6, 5, 4, 11), class_cost_x=0.1)
    pretrained = perturbed(stage1, seed=5).numpy_params()
    with pytest.raises(TaggerError, match="missing"):
        Tagger(stage2).load_params(pretrained)
    model = Tagger(stage2, seed=9)
    before = model.numpy_params()
    loaded = model.load_params(pretrained, subset=True)
    assert "f_2_c" not in loaded and "f_3_W" not in loaded and {"W", "f_2_W", "g_2_a1", "g_0_W", "v"} <= set(loaded)
    after = model.numpy_params()
    for name in after:
        np.testing.assert_array_equal(after[name], pretrained[name] if name in loaded else before[name])
    wrong = dict(pretrained, f_2_W=np.zeros((6, 4), np.float32))
    with pytest.raises(TaggerError, match="f_2_W has shape"):
        model.load_params(wrong, subset=True)


def test_noise_draws_and_explicit_noise():
    model = perturbed(BINARY)
    x = inputs(BINARY)
    a = model(x, generator=torch.Generator().manual_seed(5))
    b = model(x, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a.denoising_cost, b.denoising_cost, rtol=0, atol=0)
    m_init = torch.randn(3, 5, 12)
    clean = model(x, corrupt=False, m_init=m_init, record=True)
    zero_flips = model(x, corruption=torch.zeros(5, 12), m_init=m_init)
    torch.testing.assert_close(clean.denoising_cost, zero_flips.denoising_cost, rtol=0, atol=0)
    torch.testing.assert_close(clean.trace["m"][0], torch.softmax(m_init, 0))
    with pytest.raises(TaggerError, match="m_init has shape"):
        model(x, m_init=torch.zeros(2, 5, 12))
    with pytest.raises(TaggerError, match="input has shape"):
        model(torch.zeros(5, 11))
    with pytest.raises(TaggerError, match="labels have shape"):
        model(x, labels=torch.zeros(4, dtype=torch.long))


def test_other_K_T_batch_of_one_and_float64():
    model = perturbed(CONTINUOUS).to(torch.float64)
    out = model(inputs(CONTINUOUS, B=1).double(), n_groups=5, n_iterations=4, record=True)
    assert out.trace["m"].shape == (5, 5, 1, 12) and out.denoising_cost.dtype == torch.float64


def test_remove_group_zeroes_its_final_mask():
    out = perturbed(BINARY)(inputs(BINARY), remove_group=1, record=True)
    assert torch.all(out.m[1] == 0) and torch.all(out.trace["m"][1][1] > 0)
    torch.testing.assert_close(out.m.sum(0), torch.ones(5, 12))


def test_the_first_likelihood_is_uniform_and_carries_no_gradient_to_v():
    """Why tag_iteration may detach L(m0): with z0 the same in every group, L(m0) = 1/K for any v, and the
    gradient of any cost of it to v is 0 (float64)."""
    config = CONTINUOUS.replace(input_noise=0.3)
    x_tilde = inputs(config).reshape(5, -1).double()
    m_init = torch.randn((config.n_groups,) + x_tilde.shape, generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64)
    z0, _ = initial_state(m_init, config.zhat_init_value)
    v = torch.tensor(-1.3, dtype=torch.float64, requires_grad=True)
    m_lh = group_likelihood(x_tilde, z0, config, pos(v))
    torch.testing.assert_close(m_lh, torch.full_like(m_lh, 1 / config.n_groups))
    weights = torch.randn(m_lh.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (grad,) = torch.autograd.grad((weights * m_lh).sum(), v)
    assert abs(float(grad)) < 1e-12
    # z that differs over groups: L depends on v
    z = z0 + 0.1 * torch.arange(config.n_groups, dtype=torch.float64)[:, None, None]
    (grad,) = torch.autograd.grad((weights * group_likelihood(x_tilde, z, config, pos(v))).sum(), v)
    assert abs(float(grad)) > 1e-3


def test_class_cost_only_is_the_class_cost_and_its_gradient():
    """A step's labelled pass (class_cost_only: its last iteration computes y alone) gives the class costs
    and errors of the whole forward, and the same gradient of the last class cost (float64)."""
    model = Tagger(CONTINUOUS, params=perturbed_params(CONTINUOUS, 0, 0.5), dtype=torch.float64)
    x = inputs(CONTINUOUS).double()
    labels = torch.tensor([[1, 2], [0, 0], [3, 9], [4, 5], [8, 7]])
    outputs, grads = [], []
    for class_cost_only in (False, True):
        model.zero_grad()
        out = model(x, generator=torch.Generator().manual_seed(4), labels=labels, class_cost_only=class_cost_only)
        out.class_cost[-1].backward()
        outputs.append(out)
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    whole, alone = outputs
    assert alone.z is None and alone.m is None and alone.cost is None and alone.denoising_cost is None
    torch.testing.assert_close(alone.class_cost, whole.class_cost, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(alone.class_error, whole.class_error)
    assert grads[1].keys() == grads[0].keys() and "z_u_W" in grads[0]
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-10, atol=1e-12, msg=name)
    for bad in ({"labels": None}, {"labels": labels, "record": True}, {"labels": labels, "remove_group": 1}):
        with pytest.raises(TaggerError, match="class_cost_only"):
            model(x, generator=torch.Generator().manual_seed(4), class_cost_only=True, **bad)


def test_pos_is_positive_and_stable():
    a = torch.tensor([-1e8, -3.0, 0.0, 1.0, 1e8], dtype=torch.float64)
    torch.testing.assert_close(pos(a), torch.tensor([5e-9, 1 / (np.sqrt(10) + 3), 1.0, 1 + np.sqrt(2), 2e8],
                                                    dtype=torch.float64))


def test_blocks_adam_rule_and_resume():
    def run(steps, resume_after=None):
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
        opt = BlocksAdam([p], lr=0.01)
        for t in range(steps):
            if t == resume_after:
                state = opt.state_dict()
                p = torch.nn.Parameter(p.detach().clone())
                opt = BlocksAdam([p], lr=0.01)
                opt.load_state_dict(state)
            p.grad = torch.tensor([0.5, 3.0], dtype=torch.float64) * (t + 1)
            opt.step()
        return p.detach()

    # by hand, SPEC 7
    theta, mean, var = np.array([1.0, -2.0]), 0.0, 0.0
    for t in range(1, 4):
        g = np.array([0.5, 3.0]) * t
        lr_t = 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        beta = 0.9 * (1 - 1e-8) ** (t - 1)
        mean = beta * mean + (1 - beta) * g
        var = 0.999 * var + 0.001 * g * g
        theta = theta - lr_t * mean / (np.sqrt(var) + 1e-8)
    np.testing.assert_allclose(run(3).numpy(), theta, rtol=1e-14)
    assert torch.equal(run(3), run(3, resume_after=2))


def test_presets_build():
    for name in ("shapes50k20x20", "freq20-2mnist-continue"):
        shapes = param_shapes(PRESETS[name])
        assert shapes["W"] == (4 * PRESETS[name].input_size, PRESETS[name].encoder_proj[0])

"""Tagger is invariant to a permutation of the pixels (paper, section 4): docs/permutation.md.

theta' = permute_params(theta, perm) on the permuted data x[..., perm], with the noise draws (the
corruption (B, D) and m0's N(0,1) draws (K, B, D)) permuted alike, computes what theta computes on x:
per-pixel outputs permuted, costs equal. Training keeps it so: the same costs step by step and the
same parameters up to the permutation. Equal up to float rounding only, since a permutation reorders
the sums over pixels (a_in @ W, the means over D in LayerNorm and in the cost).
"""
import numpy as np
import pytest
import torch

from tagger_torch.config import from_dict
from tagger_torch.data import load_split
from tagger_torch.data.permute import inverse_permutation, permute_params, permute_pixels, pixel_permutation
from tagger_torch.model import Tagger
from tagger_torch.optim import BlocksAdam
from tagger_torch.params import init_params, param_shapes
from tagger_torch.tagger import draw_corruption
from tiny import TINY

PIXEL_PARAMS = ("W", "z_u_W", "m_u_W", "c1", "b1")


def test_permute_params_moves_only_the_pixel_axes():
    config = from_dict({**TINY, "in_dim": [2, 5], "input_type": "continuous", "encoder_proj": [6, 4, 3]})
    params = init_params(config, 1)
    perm = pixel_permutation(0, 10)
    out = permute_params(params, perm, config)
    assert sorted(out) == sorted(params) and all(out[n].shape == s for n, s in param_shapes(config).items())
    for block in range(4):  # W's rows: blocks [zt, dz, m, L] of D rows
        np.testing.assert_array_equal(out["W"][block * 10:(block + 1) * 10], params["W"][block * 10 + perm])
    for name in ("z_u_W", "m_u_W"):
        np.testing.assert_array_equal(out[name], params[name][:, perm])
    for name in ("c1", "b1"):
        params[name] = np.arange(10.0)  # (init is constant: give them values that show the order)
        np.testing.assert_array_equal(permute_params(params, perm)[name], params[name][perm])
    for name in params:
        if name not in PIXEL_PARAMS:
            assert out[name] is params[name]
    back = permute_params(permute_params(params, perm), inverse_permutation(perm))
    for name in params:
        np.testing.assert_array_equal(back[name], params[name])
    as_tensors = permute_params({n: torch.from_numpy(v) for n, v in params.items()}, perm)
    for name in params:
        np.testing.assert_array_equal(as_tensors[name].numpy(), permute_params(params, perm)[name])
    with pytest.raises(ValueError):
        permute_params(params, pixel_permutation(0, 9))
    with pytest.raises(ValueError):
        permute_params(params, np.zeros(10, dtype=int))


def perturbed(config, seed):
    """Release init plus noise on every parameter (so c1, b1, the biases and combinators are not constant)."""
    rng = np.random.RandomState(seed)
    return {n: (v + 0.3 * rng.randn(*v.shape)).astype(np.float32) for n, v in init_params(config, seed).items()}


@pytest.mark.parametrize("input_type, norm", [("binary", "batch"), ("binary", "layer"),
                                              ("continuous", "batch"), ("continuous", "layer"),
                                              ("binary", "layer-groups"), ("continuous", "layer-gain"),
                                              ("binary", "layer-ladder"), ("binary", "layer-tagger")])
def test_one_forward_pass_is_permuted(input_type, norm):
    config = from_dict({**TINY, "in_dim": [1, 6, 6], "input_type": input_type, "norm": norm,
                        "encoder_proj": [10, 8, 11], "class_cost_x": 0.1})
    D, K, B, dtype = 36, 3, 7, torch.float64
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((B, 1, 6, 6), generator=gen, dtype=dtype)  # (B, *in_dim)
    if input_type == "binary":
        x = (x > 0.6).to(dtype)
    labels = torch.randint(0, 10, (B,), generator=gen)
    corruption = draw_corruption(x.reshape(B, D), config, gen)  # (B, D)
    m_init = torch.randn((K, B, D), generator=gen, dtype=dtype)
    perm = pixel_permutation(4, D)
    params = perturbed(config, 2)
    plain = Tagger(config, params=params, dtype=dtype)
    permuted = Tagger(config, params=permute_params(params, perm, config), dtype=dtype)
    with torch.no_grad():
        a = plain(x, corruption=corruption, m_init=m_init, labels=labels, record=True)
        b = permuted(permute_pixels(x, perm), corruption=permute_pixels(corruption, perm),
                     m_init=permute_pixels(m_init, perm), labels=labels, record=True)
    for key in ("z", "m", "m_lh", "delta_z"):  # per-pixel: (T(+1), K, B, D), permuted
        torch.testing.assert_close(b.trace[key], permute_pixels(a.trace[key], perm), rtol=1e-12, atol=1e-13)
    for key in ("y", "denoising_cost", "class_cost"):  # per image or per batch: equal
        torch.testing.assert_close(b.trace[key], a.trace[key], rtol=1e-12, atol=1e-13)
    assert not torch.allclose(b.trace["z"], a.trace["z"])  # the permutation did move pixels


def train_steps(params, batches, config, dtype, perm=None):
    """A few BlocksAdam steps on explicit batches (x, corruption, m_init), all permuted by perm when given.

    Returns (costs (steps, T) float64, final parameters by name)."""
    if perm is not None:
        params = permute_params(params, perm, config)
        batches = [tuple(permute_pixels(a, perm) for a in batch) for batch in batches]
    model = Tagger(config, params=params, dtype=dtype)
    optimizer = BlocksAdam(model.parameters(), lr=config.lr)
    costs = []
    for x, corruption, m_init in batches:
        optimizer.zero_grad()
        out = model(x, corruption=corruption, m_init=m_init)
        out.cost.backward()
        optimizer.step()
        costs.append(out.denoising_cost.detach().double().numpy())
    return np.array(costs), model.numpy_params()


# (start, norm, dtype, cost rtol, parameter atol). A reordered sum over the D pixels differs in its last
# bits, so the two runs agree to float rounding, amplified only where Adam divides a gradient by its
# own size (lr m / (sqrt(v) + 1e-8)): a gradient whose size is near its rounding error gets a step
# whose sign is that error's. One step moves a weight by up to ~lr = 2e-3; 4 steps moved them 8e-3.
# Observed here (bounds 10-100x above):       costs (relative)   parameters (absolute)
#   release init, LayerNorm, float64           0                  1.9e-15
#   release init, BatchNorm, float64           1.4e-10            1.6e-7
#   perturbed init, BatchNorm, float64         2.1e-15            2.5e-13
#   release init, LayerNorm, float32           7.9e-8             2.3e-6
#   perturbed init, BatchNorm, float32         1.6e-7             1.1e-5
# The release's own start with BatchNorm is a degenerate point: there zhat_0 = g_0_a5 is the same in
# every row, so the gradients of g_0_a1 and g_0_a5 are exactly 0 in exact arithmetic (the next
# BatchNorm removes any per-unit shift) and pure rounding noise numerically (~1e-13 in float64), a
# different noise for each pixel order; Adam's first step turns it into ~1e-9 moves that later steps
# carry on. In float32 that noise (~1e-5) already gets full Adam steps of random sign, so that case is
# not compared (docs/permutation.md); from a perturbed start every gradient is a real signal.
CASES = [
    ("release", "layer", torch.float64, 1e-13, 1e-13),
    ("release", "batch", torch.float64, 1e-8, 2e-6),
    ("perturbed", "batch", torch.float64, 1e-13, 1e-11),
    ("release", "layer", torch.float32, 2e-6, 1e-4),
    ("perturbed", "batch", torch.float32, 2e-6, 1e-4),
]


@pytest.fixture(autouse=True)
def one_thread():
    """These products are tiny: one thread is faster, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("start, norm, dtype, rtol, atol", CASES,
                         ids=[f"{c[0]}-{c[1]}-{str(c[2])[6:]}" for c in CASES])
def test_training_on_permuted_shapes_is_training_on_shapes(small_shapes_h5, start, norm, dtype, rtol, atol):
    config = from_dict({**TINY, "norm": norm})
    D, K, B, steps = 400, config.n_groups, config.batch_size, 4
    features = torch.from_numpy(load_split(small_shapes_h5, "train", ("features",))["features"]).to(dtype)
    gen = torch.Generator().manual_seed(1)
    batches = []
    for step in range(steps):  # the plain run's draws; the permuted run gets them permuted
        x = features[step * B:(step + 1) * B]  # (B, D)
        batches.append((x, draw_corruption(x, config, gen), torch.randn((K, B, D), generator=gen, dtype=dtype)))
    perm = pixel_permutation(0, D)
    params = init_params(config, config.seed)
    if start == "perturbed":
        rng = np.random.RandomState(0)
        params = {n: (v + 0.1 * rng.randn(*v.shape)).astype(np.float32) for n, v in params.items()}
    costs, trained = train_steps(params, batches, config, dtype)
    costs_p, trained_p = train_steps(params, batches, config, dtype, perm)
    np.testing.assert_allclose(costs_p, costs, rtol=rtol, atol=0)
    assert np.all(np.diff(costs[:, -1]) != 0)  # the model did change from step to step
    expected = permute_params(trained, perm, config)
    for name, value in trained_p.items():
        np.testing.assert_allclose(value, expected[name], rtol=0, atol=atol, err_msg=name)
    moved = max(np.abs(trained[n] - params[n]).max() for n in trained)
    assert moved > 50 * atol  # the parameters moved far beyond the tolerance

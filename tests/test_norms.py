"""The normalisations a config can choose (tagger_torch.norms): what each statistics pools over, which
sites take which statistics, the learned gains of 'layer-gain', which models depend on their batch,
calibration of the mixed placements, presets, the one-line error, and training each through the CLI.
(Torch against the NumPy reference for every norm: parity_tests.)"""
import json

import numpy as np
import pytest
import torch

from parity_tests.cases import perturbed_params
from tagger_torch.calibrate import calibrate_model
from tagger_torch.config import PRESETS, from_dict, get_preset
from tagger_torch.data import load_split
from tagger_torch.errors import TaggerError
from tagger_torch.model import Tagger
from tagger_torch.norms import NORMS, uses_batch_statistics
from tagger_torch.normstats import BatchStatistics, PopulationStatistics
from tagger_torch.ops import normalize
from tiny import TINY, assert_one_line_error, invoke

SITES = ["W", "f_1_W", "f_2_W", "y", "g_1_W", "g_0_W", "z_u_W", "m_u_W"]  # TINY's Ladder: L = 2
LADDER_SITES = SITES[1:6]
CANDIDATES = [norm for norm in NORMS if norm != "batch"]


def moments(a, dims):
    return a.mean(dim=dims), a.var(dim=dims, unbiased=False)


def test_each_statistics_pools_over_its_values():
    K, B, H = 3, 5, 7
    a = torch.randn(K * B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3 + 2
    a[:B] += 10  # group 0 of every example lies apart from the others
    mean, var = moments(normalize(a, "batch"), 0)  # per unit over the K*B rows
    torch.testing.assert_close(mean, torch.zeros(H, dtype=a.dtype), atol=1e-12, rtol=0)
    torch.testing.assert_close(var, torch.ones(H, dtype=a.dtype), atol=1e-9, rtol=0)
    mean, var = moments(normalize(a, "layer"), 1)  # per row over its units
    torch.testing.assert_close(mean, torch.zeros(K * B, dtype=a.dtype), atol=1e-12, rtol=0)
    torch.testing.assert_close(var, torch.ones(K * B, dtype=a.dtype), atol=1e-9, rtol=0)
    pooled = normalize(a, "layer-groups", K).reshape(K, B, H)  # rows group-major: (K, B, H)
    mean, var = moments(pooled, (0, 2))  # per example over its K groups' units
    torch.testing.assert_close(mean, torch.zeros(B, dtype=a.dtype), atol=1e-12, rtol=0)
    torch.testing.assert_close(var, torch.ones(B, dtype=a.dtype), atol=1e-9, rtol=0)
    # the groups of an example keep their differences: group 0 stays above the others
    assert (pooled[0].mean(dim=1) > pooled[1:].mean(dim=(0, 2)) + 1).all()
    with pytest.raises(ValueError, match="n_groups"):
        normalize(a, "layer-groups")


# norm -> the statistics of Tagger's sites W, z_u_W, m_u_W and of the Ladder's, as docs/SPEC.md section 8 states
PLACEMENTS = {"batch": ("batch", "batch"), "layer": ("layer", "layer"), "layer-groups": ("layer-groups",) * 2,
              "layer-gain": ("layer", "layer"), "layer-ladder": ("batch", "layer"), "layer-tagger": ("layer", "batch")}


@pytest.mark.parametrize("norm", NORMS)
def test_each_site_takes_the_statistics_of_its_placement(norm):
    K, B = 2, 4
    a = torch.randn(K * B, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    normalise = BatchStatistics(norm, K)
    for site in SITES:
        expected = PLACEMENTS[norm][site in LADDER_SITES]
        torch.testing.assert_close(normalise(a, site), normalize(a, expected, K), atol=0, rtol=0,
                                   msg=f"{norm} at {site}")
    assert uses_batch_statistics(norm) == ("batch" in PLACEMENTS[norm])


def test_layer_gain_parameters_start_as_layer():
    layer = from_dict({**TINY, "norm": "layer"})
    gain = layer.replace(norm="layer-gain")
    model = Tagger(gain)
    added = [name for name in model.shapes if name not in Tagger(layer).shapes]
    assert added == ["c", "m_u_c", "f_1_c"]  # the release's gain letter c; Tagger's, then the Ladder's
    names = list(model.shapes)
    for name, after in (("c", "b"), ("f_1_c", "f_1_b"), ("m_u_c", "m_u_W")):
        assert names.index(name) == names.index(after) + 1
    assert model.shapes["c"] == (24,) and model.shapes["f_1_c"] == (12,) and model.shapes["m_u_c"] == (400,)
    for name in added:
        assert torch.equal(getattr(model, name), torch.ones(model.shapes[name]))
    # gains of 1 compute exactly 'layer'; other gains change the result
    params = perturbed_params(layer, seed=0, scale=0.3)
    ones = {name: np.ones(model.shapes[name], dtype=np.float32) for name in added}
    x = (torch.rand(6, 400, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    m_init = torch.randn(3, 6, 400, generator=torch.Generator().manual_seed(1))

    def masks(config, p):
        with torch.no_grad():
            return Tagger(config, params=p)(x, corrupt=False, m_init=m_init).m

    assert torch.equal(masks(layer, params), masks(gain, {**params, **ones}))
    for name in added:
        other = {**params, **ones, name: np.full(model.shapes[name], 1.5, dtype=np.float32)}
        assert not torch.allclose(masks(gain, other), masks(layer, params), atol=1e-3), name


def alone_and_in_batch(model, x, normaliser=None):
    """The masks of example 0 alone and among the examples of x, with the same m0 draws, float64."""
    K = model.config.n_groups
    x = x.double()
    m_init = torch.randn((K, x.shape[0], model.config.input_size), generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64)
    with torch.no_grad():
        alone = model(x[:1], corrupt=False, m_init=m_init[:, :1], n_iterations=3, normaliser=normaliser)
        batch = model(x, corrupt=False, m_init=m_init, n_iterations=3, normaliser=normaliser)
    return alone.m[:, 0], batch.m[:, 0]


@pytest.mark.parametrize("norm", CANDIDATES)
def test_an_example_depends_on_its_batch_only_through_batch_statistics(norm, small_shapes_h5):
    config = from_dict({**TINY, "norm": norm})
    model = Tagger(config, params=perturbed_params(config, seed=0, scale=0.3), dtype=torch.float64)
    x = torch.from_numpy(load_split(small_shapes_h5, "test", ("features",))["features"][:20])
    alone, in_batch = alone_and_in_batch(model, x)
    if uses_batch_statistics(norm):
        assert (alone - in_batch).abs().max() > 1e-3
    else:
        torch.testing.assert_close(alone, in_batch, rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm, pooled", [("layer-ladder", ["W", "z_u_W", "m_u_W"]),
                                          ("layer-tagger", LADDER_SITES)])
def test_calibration_pools_the_batch_sites_only(norm, pooled, small_shapes_h5):
    config = from_dict({**TINY, "norm": norm, "valid_batch_size": 50})
    model = Tagger(config, params=perturbed_params(config, seed=0, scale=0.3), dtype=torch.float64)
    stats = calibrate_model(model, small_shapes_h5, "train", n_iterations=3, max_examples=100)
    assert all(sorted(stats.mean[path]) == sorted(pooled) for path in ("clean", "corrupted"))
    x = torch.from_numpy(load_split(small_shapes_h5, "test", ("features",))["features"][:20])
    alone, in_batch = alone_and_in_batch(model, x, PopulationStatistics(stats, dtype=torch.float64, norm=norm))
    torch.testing.assert_close(alone, in_batch, rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm", [norm for norm in CANDIDATES if not uses_batch_statistics(norm)])
def test_layernorm_only_models_refuse_calibration(norm, small_shapes_h5):
    config = from_dict({**TINY, "norm": norm})
    with pytest.raises(TaggerError, match=f"norm '{norm}' \\(LayerNorm\\) normalises each example alone"):
        calibrate_model(Tagger(config), small_shapes_h5)


def test_presets_and_the_bad_norm_error(tmp_path, small_shapes_h5):
    by_norm = {PRESETS[name].norm: name for name in PRESETS if name.startswith("shapes50k20x20")}
    assert sorted(by_norm) == sorted(NORMS)  # one Shapes preset per norm, the release's protocol otherwise
    for name in by_norm.values():
        assert get_preset(name).replace(norm="batch") == get_preset("shapes50k20x20")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"norm": "group"}))
    result = invoke("train", "--hdf5", small_shapes_h5, "--preset", "shapes50k20x20-ln", "--config", bad,
                    "--out", tmp_path / "run")
    assert_one_line_error(result, "Error: config field 'norm' must be one of")
    assert all(f"'{norm}'" in result.stderr for norm in NORMS)


@pytest.mark.parametrize("norm", [norm for norm in CANDIDATES if norm != "layer"])
def test_each_candidate_trains_and_scores_through_the_cli(norm, tmp_path, small_shapes_h5):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY, "norm": norm, "num_epochs": 1}))
    run = tmp_path / "run"
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", config, "--out", run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["norm"] == norm
    assert set(np.load(run / "params.npz")) == set(Tagger(from_dict({**TINY, "norm": norm})).shapes)
    scores = tmp_path / "test.json"
    result = invoke("evaluate", "--run", run, "--hdf5", small_shapes_h5, "--iterations", 3, "--max-examples", 50,
                    "--device", "cpu", "--out", scores)
    assert result.exit_code == 0, result.output
    assert len(json.loads(scores.read_text())["ami"]) == 3
    population = ("evaluate", "--run", run, "--hdf5", small_shapes_h5, "--iterations", 3, "--norm-stats", "population",
                  "--batch-size", 1, "--max-examples", 20, "--device", "cpu")
    if not uses_batch_statistics(norm):
        result = invoke(*population)
        assert_one_line_error(result, f"uses LayerNorm (norm '{norm}')")
        return
    assert "has no population statistics" in invoke(*population).stderr
    result = invoke("calibrate", "--run", run, "--iterations", 3, "--max-examples", 100, "--device", "cpu")
    assert result.exit_code == 0, result.output
    sites = 3 if norm == "layer-ladder" else 5  # W, z_u_W, m_u_W or the Ladder's f_1_W, f_2_W, y, g_1_W, g_0_W
    assert f"population statistics of {sites} normalisation sites x 2 paths" in result.output
    result = invoke(*population)
    assert result.exit_code == 0, result.output
    assert "population statistics, batches of 1" in result.output

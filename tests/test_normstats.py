"""The normalisation seam and population statistics (tagger_torch.normstats, calibrate, evaluate
--norm-stats): the default path is untouched, calibration pools exactly, population statistics make a
BatchNorm model a function of one example, LayerNorm models are one without them; one-line errors."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from parity_tests.cases import perturbed_params
from tagger_torch.calibrate import calibrate_model
from tagger_torch.config import from_dict
from tagger_torch.data import load_split
from tagger_torch.errors import TaggerError
from tagger_torch.model import Tagger
from tagger_torch.normstats import (BatchStatistics, PopulationStatistics, Recorder, check_norm_stats,
                                    load_norm_stats, save_norm_stats)
from tagger_torch.tagger import tag_iteration
from tiny import TINY, assert_one_line_error, invoke

SITES = ["W", "f_1_W", "f_2_W", "y", "g_1_W", "g_0_W", "z_u_W", "m_u_W"]  # TINY's Ladder: L = 2


def copy_run(src, dst):
    """config.json and params.npz of a run, in a new directory (no statistics)."""
    os.makedirs(dst)
    for name in ("config.json", "params.npz"):
        shutil.copy(os.path.join(src, name), dst)
    return str(dst)


@pytest.fixture(scope="module")
def bn_model():
    config = from_dict({**TINY, "valid_batch_size": 40})
    return Tagger(config, params=perturbed_params(config, seed=0, scale=0.3))


@pytest.fixture(scope="module")
def bn_stats(bn_model, small_shapes_h5):
    return calibrate_model(bn_model, small_shapes_h5, "train", n_iterations=3)


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory, trained_run, small_shapes_h5):
    run = copy_run(trained_run, tmp_path_factory.mktemp("calibrated") / "run")
    result = invoke("calibrate", "--run", run, "--hdf5", small_shapes_h5, "--iterations", 3, "--device", "cpu")
    assert result.exit_code == 0, result.output
    return run


def test_default_and_recorder_normalise_as_before(bn_model, small_shapes_h5):
    """normalise=None, BatchStatistics and the calibration Recorder give bitwise the same iteration."""
    cfg = bn_model.config
    rng = np.random.RandomState(0)
    K, B, D = 3, 7, cfg.input_size
    x = torch.from_numpy(rng.rand(B, D).round().astype(np.float32))
    z = torch.sigmoid(torch.from_numpy(rng.randn(K, B, D).astype(np.float32)))
    m = torch.softmax(torch.from_numpy(rng.randn(K, B, D).astype(np.float32)), dim=0)
    p = bn_model._parameters
    with torch.no_grad():
        plain = tag_iteration(x, z, m, z, p, cfg)
        for normalise in (BatchStatistics("batch"), Recorder("batch").at(0, "clean")):
            other = tag_iteration(x, z, m, z, p, cfg, normalise=normalise)
            for a, b in zip(plain, other):
                assert torch.equal(a, b)


def test_recorder_pools_exact_mean_and_variance():
    rng = np.random.RandomState(1)
    parts = [torch.from_numpy(rng.randn(n, 5) * 3 + 7) for n in (12, 1, 40, 7)]  # unequal batches
    recorder = Recorder("batch")
    for a in parts:
        recorder.at(0, "clean")(a, "s")
    stats = recorder.result({"iterations": 1, "groups": 3})
    everything = torch.cat(parts).numpy()
    np.testing.assert_allclose(stats.mean["clean"]["s"][0], everything.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(stats.var["clean"]["s"][0], everything.var(axis=0), rtol=1e-12)
    assert stats.rows["clean"].tolist() == [60]


def test_calibration_covers_every_site_path_and_iteration(bn_stats, tmp_path):
    for path in ("clean", "corrupted"):
        assert list(bn_stats.mean[path]) == SITES
        assert bn_stats.rows[path].tolist() == [3 * 300] * 3  # K * examples at each iteration
        for site in SITES:
            assert bn_stats.mean[path][site].shape == bn_stats.var[path][site].shape
            assert bn_stats.mean[path][site].shape[0] == 3 and np.all(bn_stats.var[path][site] >= 0)
    # the statistics differ by iteration and by path
    assert not np.allclose(bn_stats.mean["clean"]["W"][0], bn_stats.mean["clean"]["W"][1])
    assert not np.allclose(bn_stats.mean["clean"]["W"][0], bn_stats.mean["corrupted"]["W"][0])
    save_norm_stats(tmp_path / "s.npz", bn_stats)
    again = load_norm_stats(str(tmp_path / "s.npz"))
    assert again.facts == bn_stats.facts and again.iterations == 3 and again.groups == 3
    np.testing.assert_array_equal(again.var["corrupted"]["g_0_W"], bn_stats.var["corrupted"]["g_0_W"])


def run_alone_and_in_batch(model, x, normaliser):
    """Masks and reconstructions of example 0 alone and within the batch x, with the same m0 draws,
    in float64 (so that the matrix products' summation order, which depends on the rows, is negligible)."""
    K, T = model.config.n_groups, 3
    x = x.double()
    m_init = torch.randn((K, x.shape[0], model.config.input_size), generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64)
    with torch.no_grad():
        alone = model(x[:1], corrupt=False, m_init=m_init[:, :1], n_iterations=T, normaliser=normaliser)
        batch = model(x, corrupt=False, m_init=m_init, n_iterations=T, normaliser=normaliser)
    return (alone.m[:, 0], alone.z[:, 0]), (batch.m[:, 0], batch.z[:, 0])


def test_population_statistics_make_a_batchnorm_model_per_example(bn_model, bn_stats, small_shapes_h5):
    x = torch.from_numpy(load_split(small_shapes_h5, "test", ("features",))["features"][:20])
    model = Tagger(bn_model.config, params=bn_model.numpy_params(), dtype=torch.float64)
    population = PopulationStatistics(bn_stats, dtype=torch.float64)
    (m1, z1), (m20, z20) = run_alone_and_in_batch(model, x, population)
    torch.testing.assert_close(m1, m20, rtol=0, atol=1e-12)
    torch.testing.assert_close(z1, z20, rtol=0, atol=1e-12)
    (m1, z1), (m20, z20) = run_alone_and_in_batch(model, x, None)  # the batch's statistics
    assert (m1 - m20).abs().max() > 0.05


def test_layernorm_needs_no_calibration(small_shapes_h5):
    config = from_dict({**TINY, "norm": "layer"})
    model = Tagger(config, params=perturbed_params(config, seed=0, scale=0.3), dtype=torch.float64)
    x = torch.from_numpy(load_split(small_shapes_h5, "test", ("features",))["features"][:20])
    (m1, z1), (m20, z20) = run_alone_and_in_batch(model, x, None)
    torch.testing.assert_close(m1, m20, rtol=0, atol=1e-12)
    torch.testing.assert_close(z1, z20, rtol=0, atol=1e-12)
    with pytest.raises(TaggerError, match="LayerNorm"):
        calibrate_model(model, small_shapes_h5)


def test_checks_of_stored_statistics(bn_model, bn_stats):
    check_norm_stats(bn_stats, bn_model, "S", n_groups=3, n_iterations=3)
    with pytest.raises(TaggerError, match="calibrate with --iterations 4"):
        check_norm_stats(bn_stats, bn_model, "S", n_groups=3, n_iterations=4)
    with pytest.raises(TaggerError, match="calibrate with --groups 4"):
        check_norm_stats(bn_stats, bn_model, "S", n_groups=4, n_iterations=3)
    other = Tagger(bn_model.config, params=perturbed_params(bn_model.config, seed=1, scale=0.3))
    with pytest.raises(TaggerError, match="other parameters"):
        check_norm_stats(bn_stats, other, "S", n_groups=3, n_iterations=3)


def test_evaluate_with_population_statistics(calibrated_run, small_shapes_h5, tmp_path):
    out = tmp_path / "m.json"
    result = invoke("evaluate", "--run", calibrated_run, "--hdf5", small_shapes_h5, "--iterations", 3,
                    "--norm-stats", "population", "--batch-size", 1, "--device", "cpu", "--out", out)
    assert result.exit_code == 0, result.output
    assert "population statistics, batches of 1" in result.output
    scores = json.loads(out.read_text())
    assert scores["norm_stats"] == "population" and scores["batch_size"] == 1
    assert len(scores["ami"]) == 3 and all(np.isfinite(scores["denoising_cost"]))
    default = invoke("evaluate", "--run", calibrated_run, "--hdf5", small_shapes_h5, "--iterations", 3,
                     "--device", "cpu", "--max-examples", 30, "--out", tmp_path / "d.json")
    assert default.exit_code == 0 and "batch statistics, batches of 50" in default.output
    assert json.loads((tmp_path / "d.json").read_text())["n_examples"] == 30


def test_calibrate_and_evaluate_errors(calibrated_run, trained_run, small_shapes_h5, tmp_path):
    def evaluate(run, *extra):
        return invoke("evaluate", "--run", run, "--hdf5", small_shapes_h5, "--device", "cpu",
                      "--norm-stats", "population", *extra)

    assert_one_line_error(evaluate(calibrated_run, "--iterations", 5), "calibrate with --iterations 5")
    assert_one_line_error(evaluate(calibrated_run, "--iterations", 2, "--groups", 4), "calibrate with --groups 4")
    bare = copy_run(trained_run, tmp_path / "bare")
    assert_one_line_error(evaluate(bare), "has no population statistics")
    assert_one_line_error(invoke("evaluate", "--run", bare, "--hdf5", small_shapes_h5, "--device", "cpu",
                                 "--batch-size", 1), "cannot normalise one example with batch statistics")
    stale = copy_run(trained_run, tmp_path / "stale")
    shutil.copy(os.path.join(calibrated_run, "norm_stats.npz"), stale)
    params = dict(np.load(os.path.join(stale, "params.npz")))
    params["b"] = params["b"] + 0.1
    np.savez(os.path.join(stale, "params.npz"), **params)
    assert_one_line_error(evaluate(stale, "--iterations", 2), "other parameters")
    ln = tmp_path / "ln"
    ln.mkdir()
    config = from_dict({**TINY, "norm": "layer"})
    (ln / "config.json").write_text(config.to_json())
    np.savez(ln / "params.npz", **perturbed_params(config, seed=0))
    assert_one_line_error(evaluate(str(ln)), "LayerNorm")
    assert_one_line_error(invoke("calibrate", "--run", ln, "--hdf5", small_shapes_h5), "LayerNorm")
    assert_one_line_error(invoke("calibrate", "--run", bare), "give --hdf5")
    assert_one_line_error(invoke("calibrate", "--run", bare, "--hdf5", small_shapes_h5, "--split", "nope"), "no split")
    assert not os.path.exists(os.path.join(bare, "norm_stats.npz"))

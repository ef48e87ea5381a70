"""`tagger-torch evaluate`: per-iteration scores, other K and T, metrics.json, one-line errors."""
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from parity_tests.cases import perturbed_params
from tagger_torch.config import from_dict
from tagger_torch.data import load_split
from tagger_torch.model import Tagger
from tagger_torch.models import Split
from tiny import TINY, assert_one_line_error, invoke



def test_scores_equal_a_per_sample_loop_with_sklearn(small_shapes_h5):
    # perturbed weights so that the masks depend on the input
    config = from_dict({**TINY, "valid_batch_size": 40})
    model = Tagger(config, params=perturbed_params(config, seed=0, scale=0.3))
    data = load_split(small_shapes_h5, "test", ("features", "mask"))
    x = torch.from_numpy(data["features"][:100])
    masks = data["mask"][:100]
    K, T = 4, 3
    got = model.evaluate(Split(x, None, masks), batch_size=40, generator=torch.Generator().manual_seed(5),
                         n_groups=K, n_iterations=T)
    # the same draws in the same order: per batch, the corrupted pass, then the clean pass
    gen = torch.Generator().manual_seed(5)
    cost, ami, ari = np.zeros(T), [], []
    with torch.no_grad():
        for start in range(0, 100, 40):
            xb = x[start:start + 40]
            cost += len(xb) * model(xb, corrupt=True, generator=gen, n_groups=K, n_iterations=T).denoising_cost.numpy()
            m = model(xb, corrupt=False, generator=gen, n_groups=K, n_iterations=T, record=True).trace["m"]
            for n in range(len(xb)):
                s = masks[start + n]  # (G, D)
                keep = s.max(0) > 0.9
                true = s.argmax(0)[keep]
                ami.append([adjusted_mutual_info_score(true, m[i, :, n].argmax(0).numpy()[keep], average_method="max")
                            for i in range(1, T + 1)])
                ari.append([adjusted_rand_score(true, m[i, :, n].argmax(0).numpy()[keep]) for i in range(1, T + 1)])
    np.testing.assert_allclose(got["denoising_cost"], cost / 100, rtol=1e-6)
    np.testing.assert_allclose(got["ami"], np.mean(ami, axis=0), atol=1e-12)
    np.testing.assert_allclose(got["ari"], np.mean(ari, axis=0), atol=1e-12)
    assert np.std(ami) > 0.01 and len(set(np.round(got["ami"], 9))) == T  # the values vary: a real comparison


def test_evaluate_with_other_groups_and_iterations(tmp_path, trained_run, small_shapes_h5):
    out = tmp_path / "metrics.json"
    result = invoke("evaluate", "--run", trained_run, "--hdf5", small_shapes_h5, "--groups", 4,
                    "--iterations", 5, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    with open(out) as f:
        scores = json.load(f)
    for key in ("ami", "ari", "denoising_cost"):
        assert len(scores[key]) == 5 and all(np.isfinite(scores[key]))
    assert "class_error" not in scores  # Shapes has no labels
    assert (scores["split"], scores["n_examples"], scores["iterations"], scores["groups"]) == ("test", 100, 5, 4)
    assert "AMI" in result.output and "denoising cost" in result.output


def test_evaluate_from_params_and_config(tmp_path, trained_run, small_shapes_h5):
    result = invoke("evaluate", "--params", f"{trained_run}/params.npz", "--config", f"{trained_run}/config.json",
                    "--hdf5", small_shapes_h5, "--split", "valid", "--iterations", 2, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "valid split" in result.output


@pytest.mark.parametrize("extra, message", [
    (["--split", "nope"], "has no split 'nope'"),
    (["--out", "/nonexistent-dir/m.json"], "cannot write"),
])
def test_evaluate_bad_inputs(trained_run, small_shapes_h5, extra, message):
    result = invoke("evaluate", "--run", trained_run, "--hdf5", small_shapes_h5, "--device", "cpu", *extra)
    assert_one_line_error(result, message)


def test_evaluate_needs_a_model(small_shapes_h5, tmp_path):
    result = invoke("evaluate", "--hdf5", small_shapes_h5, "--params", tmp_path / "p.npz")
    assert_one_line_error(result, "--config")

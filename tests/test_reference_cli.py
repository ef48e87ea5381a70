"""`python -m tagger_reference init-params | trace` on configs of every kind, and its one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import tagger_reference as ref
from parity_tests.cases import perturbed_params
from tagger_reference.cli import main
from tagger_torch.config import from_dict
from tiny import assert_one_line_error

TRAINING_FIELDS = {"lr": 0.001, "batch_size": 4, "valid_batch_size": 4, "num_epochs": 1, "seed": 3,
                   "labeled_samples": None}
CONFIGS = {
    "binary-batch": {"in_dim": [12], "input_type": "binary", "n_groups": 3, "n_iterations": 2,
                     "encoder_proj": [6, 5, 4], "input_noise": 0.2, "zhat_init_value": 0.26, "class_cost_x": 0.0,
                     "objects_per_sample": 1, "norm": "batch", **TRAINING_FIELDS},
    "binary-layer": {"in_dim": [3, 4], "input_type": "binary", "n_groups": 2, "n_iterations": 3,
                     "encoder_proj": [5, 4], "input_noise": 0.1, "zhat_init_value": 0.3, "norm": "layer"},
    "continuous-batch-1obj": {"in_dim": [1, 2, 4], "input_type": "continuous", "n_groups": 4, "n_iterations": 1,
                              "encoder_proj": [7, 5, 4], "input_noise": 0.2, "zhat_init_value": 0.5,
                              "class_cost_x": 0.1, "objects_per_sample": 1},
    "continuous-layer-2obj": {"in_dim": [10], "input_type": "continuous", "n_groups": 2, "n_iterations": 4,
                              "encoder_proj": [6, 4, 3, 5], "input_noise": 0.18, "zhat_init_value": 0.5,
                              "class_cost_x": 0.1, "objects_per_sample": 2, "norm": "layer"},
}
B = 4


def write_inputs(tmp_path, fields, corrupted=True, seed=0):
    """Config JSON, X.npy (B, *in_dim) float32, N.npz, and Y.npy when the config has a class head."""
    config = from_dict(fields)
    rng = np.random.RandomState(seed)
    D = config.input_size
    (tmp_path / "cfg.json").write_text(json.dumps(fields))
    if config.input_type == "binary":
        x = (rng.rand(B, D) < 0.4).astype(np.float32)
        corruption = (rng.rand(B, D) < config.input_noise).astype(np.float32)
    else:
        x = rng.rand(B, D).astype(np.float32)
        corruption = rng.randn(B, D).astype(np.float32)
    np.save(tmp_path / "x.npy", x.reshape((B,) + config.in_dim))
    noise = {"m_init": rng.randn(config.n_groups, B, D).astype(np.float32)}
    if corrupted:
        noise["corruption"] = corruption
    np.savez(tmp_path / "noise.npz", **noise)
    labels = None
    if config.class_cost_x > 0:
        labels = rng.randint(0, config.n_classes, size=(B, config.objects_per_sample))
        np.save(tmp_path / "y.npy", labels)
    return config, x, noise, labels


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def perturb_params_file(path, config, seed):
    """The parameter file of init-params --seed `seed`, every parameter moved off its release init, so
    that the trace is not the trivial one."""
    params = perturbed_params(config, seed, scale=0.3)
    np.savez(path, **params)
    return params


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("corrupted", [True, False])
def test_init_params_then_trace(tmp_path, name, corrupted):
    config, x, noise, labels = write_inputs(tmp_path, CONFIGS[name], corrupted)
    result = invoke("init-params", "--config", tmp_path / "cfg.json", "--seed", 5, "--out", tmp_path / "p.npz")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "p.npz") as f:
        initial = {k: f[k] for k in f.files}
    assert list(initial) == list(ref.param_shapes(config))
    for k, v in ref.init_params(config, 5).items():
        assert initial[k].dtype == np.float32
        np.testing.assert_array_equal(initial[k], v)
    params = perturb_params_file(tmp_path / "p.npz", config, seed=5)

    args = ["trace", "--config", tmp_path / "cfg.json", "--params", tmp_path / "p.npz", "--input",
            tmp_path / "x.npy", "--noise", tmp_path / "noise.npz", "--out", tmp_path / "trace.npz"]
    if labels is not None:
        args += ["--labels", tmp_path / "y.npy"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    expected = ref.forward(params, config, x, noise["m_init"], noise.get("corruption"), labels)
    T, K, D = config.n_iterations, config.n_groups, config.input_size
    with np.load(tmp_path / "trace.npz") as f:
        assert sorted(f.files) == sorted(expected)
        assert f["z"].shape == (T + 1, K, B, D) and f["y"].shape == (T, K, B, config.encoder_proj[-1])
        for k in f.files:
            np.testing.assert_array_equal(f[k], expected[k])
        if labels is not None:
            assert f["class_error"].shape == (T,) and np.all((f["class_error"] >= 0) & (f["class_error"] <= 100))


def test_init_params_seed_defaults_to_the_config(tmp_path):
    config, *_ = write_inputs(tmp_path, CONFIGS["binary-batch"])
    assert invoke("init-params", "--config", tmp_path / "cfg.json", "--out", tmp_path / "p.npz").exit_code == 0
    with np.load(tmp_path / "p.npz") as f:
        np.testing.assert_array_equal(f["W"], ref.init_params(config, 3)["W"])


def run_trace(tmp_path, **override):
    files = {"config": tmp_path / "cfg.json", "params": tmp_path / "p.npz", "input": tmp_path / "x.npy",
             "noise": tmp_path / "noise.npz", "out": tmp_path / "trace.npz", **override}
    args = ["trace"]
    for option, path in files.items():
        args += [f"--{option}", path]
    return invoke(*args)


def test_errors_are_one_line_with_status_2(tmp_path):
    fields = CONFIGS["continuous-batch-1obj"]
    config, x, noise, labels = write_inputs(tmp_path, fields)
    invoke("init-params", "--config", tmp_path / "cfg.json", "--out", tmp_path / "p.npz")

    (tmp_path / "bad.json").write_text(json.dumps({**fields, "n_grups": 3}))
    assert_one_line_error(run_trace(tmp_path, config=tmp_path / "bad.json"), "unknown config field(s): n_grups")
    (tmp_path / "bad.json").write_text(json.dumps({**fields, "input_type": "ternary"}))
    assert_one_line_error(invoke("init-params", "--config", tmp_path / "bad.json", "--out", tmp_path / "q.npz"),
                          "input_type")
    assert_one_line_error(run_trace(tmp_path, params=tmp_path / "none.npz"), "parameter file not found")

    np.savez(tmp_path / "n2.npz", corruption=noise["corruption"])
    assert_one_line_error(run_trace(tmp_path, noise=tmp_path / "n2.npz"), "no array 'm_init'")
    np.savez(tmp_path / "n2.npz", m_init=noise["m_init"][:2])
    assert_one_line_error(run_trace(tmp_path, noise=tmp_path / "n2.npz"), "m_init has shape (2, 4, 8)")
    np.savez(tmp_path / "n2.npz", m_init=noise["m_init"], corruption=noise["corruption"][:, :5])
    assert_one_line_error(run_trace(tmp_path, noise=tmp_path / "n2.npz"), "corruption has shape")
    np.savez(tmp_path / "n2.npz", m_init=noise["m_init"], extra=noise["corruption"])
    assert_one_line_error(run_trace(tmp_path, noise=tmp_path / "n2.npz"), "unknown array(s) in noise file")

    np.save(tmp_path / "x2.npy", np.zeros((B, 9), np.float32))
    assert_one_line_error(run_trace(tmp_path, input=tmp_path / "x2.npy"), "input has shape (4, 9)")

    with np.load(tmp_path / "p.npz") as f:
        params = {k: f[k] for k in f.files}
    np.savez(tmp_path / "p2.npz", **params, f_9_W=np.zeros(2))
    assert_one_line_error(run_trace(tmp_path, params=tmp_path / "p2.npz"), "unknown parameter name(s)")
    np.savez(tmp_path / "p2.npz", **{**params, "c1": np.ones(3)})
    assert_one_line_error(run_trace(tmp_path, params=tmp_path / "p2.npz"), "parameter c1 has shape (3,)")

    np.save(tmp_path / "y2.npy", np.full(B, 10))
    result = run_trace(tmp_path, labels=tmp_path / "y2.npy")
    assert_one_line_error(result, "labels must lie in [0, 3)")


def test_binary_corruption_must_be_bits(tmp_path):
    config, x, noise, _ = write_inputs(tmp_path, CONFIGS["binary-batch"])
    invoke("init-params", "--config", tmp_path / "cfg.json", "--out", tmp_path / "p.npz")
    np.savez(tmp_path / "noise.npz", m_init=noise["m_init"], corruption=noise["corruption"] * 0.5)
    assert_one_line_error(run_trace(tmp_path), "bit-flip indicators")


def test_python_dash_m_entry_point(tmp_path):
    write_inputs(tmp_path, CONFIGS["binary-batch"])
    (tmp_path / "bad.json").write_text(json.dumps({"in_dim": [4], "norm": "group"}))
    proc = subprocess.run([sys.executable, "-m", "tagger_reference", "init-params", "--config",
                           str(tmp_path / "bad.json"), "--out", str(tmp_path / "p.npz")],
                          capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, "Error: config field 'norm'")
    proc = subprocess.run([sys.executable, "-m", "tagger_reference", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "init-params" in proc.stdout and "trace" in proc.stdout

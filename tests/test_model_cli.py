"""`tagger-torch init-params` and `tagger-torch trace`: files, array names, one-line errors (exit 2)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tagger_torch.config import TaggerConfig
from tagger_torch.params import init_params
from tiny import assert_one_line_error, invoke

CONFIG = {"in_dim": [3, 4], "encoder_proj": [8, 6, 11], "n_groups": 3, "n_iterations": 2,
          "class_cost_x": 0.1, "seed": 4}


@pytest.fixture
def files(tmp_path):
    rng = np.random.RandomState(0)
    paths = {name: str(tmp_path / name) for name in ("cfg.json", "p.npz", "x.npy", "n.npz", "y.npy", "t.npz")}
    with open(paths["cfg.json"], "w") as f:
        json.dump(CONFIG, f)
    np.save(paths["x.npy"], (rng.rand(5, 3, 4) < 0.3).astype(np.float32))
    np.savez(paths["n.npz"], m_init=rng.randn(3, 5, 12), corruption=(rng.rand(5, 12) < 0.2) * 1.0)
    np.save(paths["y.npy"], np.array([0, 1, 2, 3, 9]))
    return paths


def test_init_params_writes_release_init(files):
    result = invoke("init-params", "--config", files["cfg.json"], "--out", files["p.npz"])
    assert result.exit_code == 0, result.output
    with np.load(files["p.npz"]) as f:
        saved = {k: f[k] for k in f.files}
    expected = init_params(TaggerConfig(**{**CONFIG, "in_dim": (3, 4), "encoder_proj": (8, 6, 11)}), 4)
    assert set(saved) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(saved[name], expected[name])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_trace_writes_every_array(files, dtype):
    assert invoke("init-params", "--config", files["cfg.json"], "--out", files["p.npz"]).exit_code == 0
    result = invoke("trace", "--config", files["cfg.json"], "--params", files["p.npz"], "--input",
                    files["x.npy"], "--noise", files["n.npz"], "--labels", files["y.npy"], "--out",
                    files["t.npz"], "--dtype", dtype)
    assert result.exit_code == 0, result.output
    with np.load(files["t.npz"]) as f:
        shapes = {k: f[k].shape for k in f.files}
        assert f["z"].dtype == np.dtype(dtype)
    assert shapes == {"z": (3, 3, 5, 12), "m": (3, 3, 5, 12), "m_lh": (2, 3, 5, 12), "delta_z": (2, 3, 5, 12),
                      "y": (2, 3, 5, 11), "denoising_cost": (2,), "class_cost": (2,), "class_error": (2,)}


@pytest.mark.parametrize("change, message", [
    ({"n.npz": "no_m_init"}, "has no array 'm_init'"),
    ({"x.npy": "missing"}, "input file not found"),
    ({"y.npy": "out_of_range"}, "labels must lie in [0, 10)"),
    ({"n.npz": "wrong_K"}, "m_init has shape (2, 5, 12), expected (3, 5, 12)"),
    ({"cfg.json": "unknown_field"}, "unknown config field(s): n_group"),
    ({"dtype": "float16"}, "unknown --dtype 'float16'"),
])
def test_trace_bad_inputs_exit_2_with_one_line(files, tmp_path, change, message):
    assert invoke("init-params", "--config", files["cfg.json"], "--out", files["p.npz"]).exit_code == 0
    what = next(iter(change.values()))
    dtype = "float32"
    if what == "no_m_init":
        np.savez(files["n.npz"], corruption=np.zeros((5, 12)))
    elif what == "missing":
        files["x.npy"] = str(tmp_path / "missing.npy")
    elif what == "out_of_range":
        np.save(files["y.npy"], np.array([0, 1, 2, 3, 10]))
    elif what == "wrong_K":
        np.savez(files["n.npz"], m_init=np.zeros((2, 5, 12)))
    elif what == "unknown_field":
        with open(files["cfg.json"], "w") as f:
            json.dump({**CONFIG, "n_group": 2}, f)
    else:
        dtype = what
    result = invoke("trace", "--config", files["cfg.json"], "--params", files["p.npz"], "--input",
                    files["x.npy"], "--noise", files["n.npz"], "--labels", files["y.npy"], "--out",
                    files["t.npz"], "--dtype", dtype)
    assert_one_line_error(result, message)


def test_init_params_needs_a_config(files):
    result = invoke("init-params", "--out", files["p.npz"])
    assert_one_line_error(result, "exactly one of --config")


def test_python_dash_m_entry_point(files):
    """`python -m tagger_torch` is the same command line as `tagger-torch`, one-line errors included."""
    bad = subprocess.run([sys.executable, "-m", "tagger_torch", "init-params", "--config", files["x.npy"],
                          "--out", files["p.npz"]], capture_output=True, text=True, timeout=120)
    assert_one_line_error(bad)
    ok = subprocess.run([sys.executable, "-m", "tagger_torch", "--help"], capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("Usage: python -m tagger_torch") and "train" in ok.stdout

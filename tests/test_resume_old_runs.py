"""Run directories written by earlier versions resume, or fail with one line that says what to do."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from tagger_torch.config import from_dict
from tagger_torch.training import run_training
from tagger_torch.training.rundir import CHECKPOINT_FORMAT, load_checkpoint
from tiny import LABELLED, TINY, assert_one_line_error, invoke, write_labelled_h5

CPU = torch.device("cpu")
FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "run-main-9f602e1")


def params_of(run):
    with np.load(os.path.join(run, "params.npz")) as f:
        return {k: f[k] for k in f.files}


def metrics_of(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if not k.endswith(("time_s", "per_s"))} for line in f]


@pytest.fixture
def one_thread():
    """The fixture was written with one thread; float32 products on two threads round otherwise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_run_of_9f602e1_resumes(tmp_path, one_thread):
    """The fixture (tests/fixtures/README.md) was written by the code before the model registry; it
    resumes with this code to the parameters of an uninterrupted run. On the machine that wrote it
    the two agree bit for bit; elsewhere its first 13 steps ran on another CPU's kernels, which Adam
    amplifies a little (up to 2e-5 on an AMD EPYC without AVX-512), hence the tolerance: lr / 30, a
    thirtieth of what one missed or repeated Adam step moves a parameter."""
    data = write_labelled_h5(tmp_path / "labelled.h5")
    run = str(tmp_path / "old")
    shutil.copytree(FIXTURE, run)
    with open(os.path.join(run, "config.json")) as f:
        assert "model" not in json.load(f)
    state = torch.load(os.path.join(run, "checkpoint.pt"), weights_only=True)
    assert "format" not in state and (state["epoch"], state["step"]) == (1, 3)
    result = invoke("train", "--resume", run, "--hdf5", data, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "epoch 2/2" in result.output
    whole = str(tmp_path / "whole")
    run_training(from_dict(LABELLED), data, whole, CPU, echo=lambda s: None)
    expected, got = params_of(whole), params_of(run)
    assert list(got) == list(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=LABELLED["lr"] / 30, err_msg=name)
    assert [r["epoch"] for r in metrics_of(run)] == [1, 2]
    assert load_checkpoint(os.path.join(run, "checkpoint.pt"))["format"] == CHECKPOINT_FORMAT


def test_the_first_checkpoint_form_resumes_exactly(tmp_path, small_shapes_h5):
    """A checkpoint as the first version wrote it (no device type, precision, compile, process count
    or format; a config without `model`) continues bitwise as an uninterrupted run."""
    config = from_dict(TINY)
    run = str(tmp_path / "run")
    run_training(config, small_shapes_h5, run, CPU, max_steps=8, echo=lambda s: None)
    path = os.path.join(run, "checkpoint.pt")
    state = torch.load(path, weights_only=True)
    for key in ("format", "device_type", "precision", "compile", "world_size", "generators", "accumulators"):
        del state[key]
    torch.save(state, path)
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump({k: v for k, v in config.to_dict().items() if k != "model"}, f)
    result = invoke("train", "--resume", run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    whole = str(tmp_path / "whole")
    run_training(config, small_shapes_h5, whole, CPU, echo=lambda s: None)
    expected, got = params_of(whole), params_of(run)
    for name in expected:
        assert np.array_equal(got[name], expected[name]), name
    assert metrics_of(run) == metrics_of(whole)


@pytest.mark.parametrize("state, message", [
    ({"model": {}, "epoch": 1}, "not a training checkpoint of tagger-torch (it lacks optimizer, generator"),
    ("newer", "written by a newer tagger-torch"),
])
def test_a_checkpoint_that_cannot_resume_says_what_to_do(tmp_path, state, message):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    if state == "newer":
        state = torch.load(run / "checkpoint.pt", weights_only=True)
        state["format"] = CHECKPOINT_FORMAT + 1
    torch.save(state, run / "checkpoint.pt")
    result = invoke("train", "--resume", run, "--device", "cpu")
    assert_one_line_error(result, message)
    if "lacks" in message:
        assert f"--load-from {run}" in result.stderr

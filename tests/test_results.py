"""The committed models reproduce their committed scores (`make test-slow`).

For each published results/NAME/ (`tagger-torch reproduce publish NAME`), the committed float16
weights are scored again through the command line a user runs (`evaluate --pretrained NAME`), with
the settings of its first scoring (test.json, or valid.json for a stage-1 model) and one thread, and
must give its numbers. Skipped with the reason when NAME is not published yet or its data file in
datasets/ (`make data`) is missing. One model's test split took
428 s with one thread on a 2-core Zen 3 shared with two training runs (OMP_NUM_THREADS=1).

Bound: on the machine and torch build that published the file, one thread gives the same floats
every time, and the comparison is exact in practice. Elsewhere (another CPU kernel of MKL/oneDNN,
another thread count) the products round differently in the last bits of float32. The denoising
cost is a mean of 10 000 smooth values: relative 1e-5 covers that. AMI and ARI are means over
10 000 images of per-image scores of argmax labels, so a rounding change moves them only where it
flips a pixel's argmax between two nearly equal masks; one flipped pixel moves one image's score by
at most ~0.05 (a shape has >= ~20 counted pixels), i.e. the mean by 5e-6, and ATOL_GROUPING = 2e-4
ATOL_CLASS_ERROR = 0.05  # points (%): one changed prediction of 10 000 moves the error by 0.01
allows ~40 such flips over the 10 000 x 5 masks.
"""
import json
import os

import numpy as np
import pytest
import torch

from tagger_torch.files import read_npz
from tagger_torch.pretrained import PRETRAINED, RESULTS_ENV, source_results_dir
from tagger_torch.publish import file_sha256, params_digest
from tagger_torch.reproduce.plan import DATA_FILES
from tiny import invoke

DATASETS = os.path.join(os.path.dirname(source_results_dir()), "datasets")
RTOL_COST = 1e-5
ATOL_GROUPING = 2e-4
ATOL_CLASS_ERROR = 0.05  # points (%): one changed prediction of 10 000 moves the error by 0.01

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_committed_weights_reproduce_test_json(name, tmp_path, monkeypatch):
    folder = os.path.join(source_results_dir(), name)
    first = PRETRAINED[name].scorings[0]
    scored = os.path.join(folder, f"{first.key}.json")
    if not os.path.isfile(scored):
        pytest.skip(f"{name} is not published yet ({scored} does not exist)")
    DATA = os.path.join(DATASETS, DATA_FILES[first.data][1])
    if not os.path.isfile(DATA):
        pytest.skip(f"{DATA} is missing (make data)")
    with open(scored) as f:
        committed = json.load(f)
    assert file_sha256(DATA) == committed["data_sha256"], f"{DATA} is not the file {name} was scored on"
    assert params_digest(read_npz(os.path.join(folder, committed["params_file"]))) == committed["params_digest"], \
        f"{folder}/{committed['params_file']} is not the file test.json was computed from"
    monkeypatch.delenv(RESULTS_ENV, raising=False)  # the source tree's results/, as for a user
    out = tmp_path / "test.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = invoke("evaluate", "--pretrained", name, "--hdf5", DATA, "--split", committed["split"],
                        "--iterations", committed["iterations"], "--groups", committed["groups"],
                        "--seed", committed["seed"], "--device", "cpu", "--out", out)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    with open(out) as f:
        again = json.load(f)
    for key in ("split", "n_examples", "iterations", "groups", "seed", "precision", "batch_size"):
        assert again[key] == committed[key], key
    assert again["run"] == folder
    np.testing.assert_allclose(again["denoising_cost"], committed["denoising_cost"], rtol=RTOL_COST, atol=0)
    for key, atol in (("ami", ATOL_GROUPING), ("ari", ATOL_GROUPING), ("class_error", ATOL_CLASS_ERROR)):
        if key in committed:
            np.testing.assert_allclose(again[key], committed[key], rtol=0, atol=atol, err_msg=key)

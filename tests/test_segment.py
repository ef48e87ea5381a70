"""`tagger-torch segment`: .npy and PNG inputs, one example and many, the .npz and the picture; an
example's result alone equals its result among others (population statistics for BatchNorm, none
for LayerNorm); every bad input is one line and exit status 2."""
import os

import numpy as np
import pytest
from PIL import Image

from parity_tests.cases import perturbed_params
from tagger_torch.config import from_dict
from tagger_torch.data import load_split
from test_normstats import copy_run
from tiny import TINY, assert_one_line_error, invoke

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def images(small_shapes_h5, tmp_path_factory):
    """Five test images of the small Shapes file as .npy (5, 400) and (5, 20, 20), and as PNGs."""
    root = tmp_path_factory.mktemp("images")
    x = load_split(small_shapes_h5, "test", ("features",))["features"][:5]  # (5, 400)
    np.save(root / "five.npy", x)
    np.save(root / "five-square.npy", x.reshape(5, 20, 20))
    np.save(root / "one.npy", x[:1])
    pngs = []
    for n in range(3):
        path = root / f"img{n}.png"
        Image.fromarray((x[n].reshape(20, 20) * 255).astype(np.uint8)).save(path)
        pngs.append(str(path))
    return {"dir": root, "x": x, "pngs": pngs}


@pytest.fixture(scope="module")
def bn_runs(tmp_path_factory, trained_run, small_shapes_h5):
    """The tiny BatchNorm run twice: calibrated (T up to 3) and not."""
    root = tmp_path_factory.mktemp("segment-runs")
    calibrated = copy_run(trained_run, root / "calibrated")
    result = invoke("calibrate", "--run", calibrated, "--hdf5", small_shapes_h5, "--iterations", 3,
                    "--max-examples", 100)
    assert result.exit_code == 0, result.output
    return {"calibrated": calibrated, "bare": copy_run(trained_run, root / "bare")}


@pytest.fixture(scope="module")
def ln_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ln-run")
    config = from_dict({**TINY, "norm": "layer"})
    (run / "config.json").write_text(config.to_json())
    np.savez(run / "params.npz", **perturbed_params(config, seed=0, scale=0.3))
    return str(run)


def segment(run, out, *inputs_and_options):
    return invoke("segment", "--run", run, "--out", out, "--device", "cpu", "--iterations", 3,
                  *inputs_and_options)


def test_npy_many_and_one(bn_runs, images, tmp_path):
    run = bn_runs["calibrated"]
    result = segment(run, tmp_path / "five.npz", "--input", images["dir"] / "five.npy")
    assert result.exit_code == 0, result.output
    assert "5 examples, K=3 groups, T=3 iterations, normalisation statistics: population" in result.output
    five = np.load(tmp_path / "five.npz")
    assert five["z"].shape == five["m"].shape == (4, 3, 5, 400)  # (T+1, K, N, D)
    assert five["reconstruction"].shape == five["groups"].shape == (4, 5, 400)
    np.testing.assert_array_equal(five["x"], images["x"])
    np.testing.assert_allclose(five["m"].sum(axis=1), 1, rtol=1e-5)
    assert five["iterations"].tolist() == [0, 1, 2, 3] and str(five["norm_stats"]) == "population"
    with open(tmp_path / "five.png", "rb") as f:
        assert f.read(8) == PNG
    result = segment(run, tmp_path / "one.npz", "--input", images["dir"] / "one.npy", "--figure-examples", 0)
    assert result.exit_code == 0, result.output
    assert not os.path.exists(tmp_path / "one.png")
    one = np.load(tmp_path / "one.npz")
    assert one["m"].shape == (4, 3, 1, 400)
    # population statistics: example 0 alone is example 0 among five (float32 rounding)
    np.testing.assert_allclose(one["m"][:, :, 0], five["m"][:, :, 0], rtol=0, atol=1e-4)
    square = segment(run, tmp_path / "square.npz", "--input", images["dir"] / "five-square.npy")
    assert square.exit_code == 0, square.output
    np.testing.assert_array_equal(np.load(tmp_path / "square.npz")["m"], five["m"])
    pairs = segment(run, tmp_path / "pairs.npz", "--input", images["dir"] / "five.npy", "--batch-size", 2)
    assert pairs.exit_code == 0, pairs.output
    np.testing.assert_allclose(np.load(tmp_path / "pairs.npz")["m"], five["m"], rtol=0, atol=1e-4)


def test_batch_statistics_depend_on_the_batch(bn_runs, images, tmp_path):
    run = bn_runs["calibrated"]
    five = segment(run, tmp_path / "b5.npz", "--input", images["dir"] / "five.npy", "--norm-stats", "batch")
    assert five.exit_code == 0, five.output
    assert "statistics: batch" in five.output and "Warning: batch statistics over 5 examples" in five.stderr
    pair = segment(run, tmp_path / "b2.npz", "--input", images["pngs"][0], "--input", images["pngs"][1],
                   "--norm-stats", "batch")
    assert pair.exit_code == 0, pair.output
    m5, m2 = np.load(tmp_path / "b5.npz")["m"], np.load(tmp_path / "b2.npz")["m"]
    assert np.abs(m5[1:, :, 0] - m2[1:, :, 0]).max() > 1e-3


def test_pngs_and_layernorm(ln_run, images, tmp_path):
    result = segment(ln_run, tmp_path / "p.npz", *[a for p in images["pngs"] for a in ("--input", p)])
    assert result.exit_code == 0, result.output
    assert "3 examples" in result.output and "statistics: none (LayerNorm)" in result.output
    many = np.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(many["x"], images["x"][:3])
    assert [os.path.basename(n) for n in many["inputs"]] == ["img0.png", "img1.png", "img2.png"]
    # one example alone, from a grey image stored as RGB (equal channels): the same masks
    rgb = write_png(tmp_path / "rgb.png", np.repeat((images["x"][0].reshape(20, 20, 1) * 255).astype(np.uint8), 3, 2))
    one = segment(ln_run, tmp_path / "p1.npz", "--input", rgb)
    assert one.exit_code == 0, one.output
    np.testing.assert_allclose(np.load(tmp_path / "p1.npz")["m"][:, :, 0], many["m"][:, :, 0], rtol=0, atol=1e-4)


def write_png(path, array):
    Image.fromarray(array).save(path)
    return path


@pytest.mark.parametrize("case, message", [
    ("npy-size", "has shape (2, 21, 20); the model takes (N, 400) or (N, 20, 20)"),
    ("npy-channels", "has shape (2, 3, 20, 20)"),
    ("png-size", "is 28x20 pixels; the model takes 20x20 images"),
    ("png-colour", "has 3 channels (RGB, with colour)"),
    ("png-grey", "is not binary-like"),
    ("npy-range", "values outside [0, 1]"),
    ("suffix", "unsupported input '.jpg'"),
    ("missing", "input file not found"),
    ("bn-one", "cannot normalise one example with batch statistics: run tagger-torch calibrate"),
    ("bn-one-batch", "cannot normalise one example with batch statistics"),
    ("bn-batches-of-one", "cannot normalise one example with batch statistics"),
    ("population-uncalibrated", "has no population statistics"),
    ("beyond-calibrated", "calibrate with --iterations 5"),
    ("out", "--out must name an .npz file"),
])
def test_bad_inputs(bn_runs, images, tmp_path, case, message):
    rng = np.random.RandomState(0)
    bare, out, one = bn_runs["bare"], tmp_path / "o.npz", images["dir"] / "one.npy"
    args = {
        "npy-size": (bare, out, "--input", tmp_path / "a.npy"),
        "npy-channels": (bare, out, "--input", tmp_path / "a.npy"),
        "png-size": (bare, out, "--input", write_png(tmp_path / "size.png", np.zeros((20, 28), np.uint8))),
        "png-colour": (bare, out, "--input", write_png(tmp_path / "colour.png", rng.randint(0, 2, (20, 20, 3)).astype(np.uint8) * 255)),
        "png-grey": (bare, out, "--input", write_png(tmp_path / "grey.png", rng.randint(0, 256, (20, 20)).astype(np.uint8))),
        "npy-range": (bare, out, "--input", tmp_path / "a.npy"),
        "suffix": (bare, out, "--input", tmp_path / "a.jpg"),
        "missing": (bare, out, "--input", tmp_path / "nope.png"),
        "bn-one": (bare, out, "--input", one),
        "bn-one-batch": (bare, out, "--input", one, "--norm-stats", "batch"),
        "bn-batches-of-one": (bare, out, "--input", images["dir"] / "five.npy", "--batch-size", 1),
        "population-uncalibrated": (bare, out, "--input", images["dir"] / "five.npy", "--norm-stats", "population"),
        "beyond-calibrated": (bn_runs["calibrated"], out, "--input", one, "--iterations", 5),
        "out": (bare, tmp_path / "o.png", "--input", one),
    }[case]
    if case == "npy-size":
        np.save(tmp_path / "a.npy", np.zeros((2, 21, 20), np.float32))
    if case == "npy-channels":
        np.save(tmp_path / "a.npy", np.zeros((2, 3, 20, 20), np.float32))
    if case == "npy-range":
        np.save(tmp_path / "a.npy", np.full((2, 400), 2.0, np.float32))
    result = invoke("segment", "--run", args[0], "--out", args[1], "--device", "cpu", *args[2:])
    assert_one_line_error(result, message)
    assert not os.path.exists(out)

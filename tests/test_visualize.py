"""`tagger-torch visualize` and the training curves: files are written, bad inputs exit 2."""
import numpy as np
import pytest

from tagger_torch.data import load_split
from tagger_torch.training.rundir import load_model
from tagger_torch.visualize import coloured, image_shape, plot_curves, run_examples
from tiny import assert_one_line_error, invoke

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG


@pytest.mark.parametrize("extra", [[], ["--remove-group", 2, "--iterations", 3, "--groups", 4]])
def test_figure_is_written(tmp_path, trained_run, small_shapes_h5, extra):
    out = tmp_path / "fig.png"
    result = invoke("visualize", "--run", trained_run, "--hdf5", small_shapes_h5, "--out", out,
                    "--indices", "0,57", "--device", "cpu", *extra)
    assert result.exit_code == 0, result.output
    assert is_png(out)
    assert result.output.count("AMI per iteration") == 2


def test_examples_of_one_batch_are_traced_as_alone(trained_run, small_shapes_h5):
    """`run_examples` computes a batch once for all its chosen examples: each example's trace and AMI
    are those of asking for it alone."""
    _, model = load_model(trained_run)
    arrays = load_split(small_shapes_h5, "test", ("features", "mask"))
    x = arrays["features"].reshape(arrays["features"].shape[0], -1)
    options = dict(n_groups=None, n_iterations=2, seed=1, remove_group=None)
    together = run_examples(model, x, [3, 57, 4], arrays["mask"], **options)
    for ex in together:
        (alone,) = run_examples(model, x, [ex["index"]], arrays["mask"], **options)
        for key in ("z", "m", "x", "mask"):
            np.testing.assert_array_equal(ex[key], alone[key], err_msg=f"{key} of example {ex['index']}")
        assert ex["ami"] == alone["ami"], f"ami of example {ex['index']}"


@pytest.mark.parametrize("extra, message", [
    (["--remove-group", 9], "--remove-group"),
    (["--indices", "100"], "--indices"),
    (["--indices", "a"], "--indices"),
])
def test_visualize_bad_inputs(tmp_path, trained_run, small_shapes_h5, extra, message):
    result = invoke("visualize", "--run", trained_run, "--hdf5", small_shapes_h5, "--out", tmp_path / "f.png",
                    "--device", "cpu", *extra)
    assert_one_line_error(result, message)


def test_curves_and_helpers(tmp_path):
    rows = [{"epoch": e, "train_cost": 1.0 / e, "valid_denoising_cost": [1.2 / e, 1.1 / e],
             "valid_class_error": [50.0 / e, 40.0 / e]} for e in (1, 2, 3)]
    plot_curves(rows, str(tmp_path / "curves.png"))
    assert is_png(tmp_path / "curves.png")
    # a panel below the costs for each of class error and grouping, where the rows have them
    import matplotlib.pyplot as plt
    grouping = [{**r, "valid_ami": [0.1 * r["epoch"], 0.2 * r["epoch"]], "valid_ari": [0.1, 0.15]} for r in rows]
    costs_only = [{k: v for k, v in r.items() if k != "valid_class_error"} for r in rows]
    heights = []
    for case, case_rows in (("costs", costs_only), ("class", rows), ("both", grouping)):
        plot_curves(case_rows, str(tmp_path / f"{case}.png"))
        heights.append(plt.imread(str(tmp_path / f"{case}.png")).shape[0])
    assert heights[0] < heights[1] < heights[2]
    assert image_shape((400,)) == (20, 20) and image_shape((1, 28, 28)) == (28, 28) and image_shape((6,)) == (1, 6)
    m = np.array([[1.0, 0.0], [0.0, 1.0]])  # two pixels, each owned by one group
    rgb = coloured(m)
    assert rgb.shape == (2, 3) and not np.allclose(rgb[0], rgb[1])
    np.testing.assert_allclose(coloured(m, np.zeros_like(m)), 0.0)

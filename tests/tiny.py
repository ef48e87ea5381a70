"""What several test files share: the tiny Tagger configs they train, a small labelled data set and
the CLI runner."""
import h5py
import numpy as np
from click.testing import CliRunner

from tagger_torch.data.h5layout import write_fuel_file

from tagger_torch.cli import main

# A tiny Shapes model: 300 training images (conftest.small_shapes_h5) in batches of 50 = 6 steps per epoch.
TINY = {"encoder_proj": [24, 12, 8], "n_groups": 3, "n_iterations": 2, "lr": 0.002, "batch_size": 50,
        "valid_batch_size": 50, "num_epochs": 2, "seed": 3}


def invoke(*args):
    """Run `tagger-torch ARGS...` in-process; click >= 8.2 keeps result.stderr apart."""
    return CliRunner().invoke(main, [str(a) for a in args])


# A continuous Tagger with a class head for labelled_h5 (2 digits per image): 200 training images in
# batches of 20, 20 of them labelled; tests/fixtures/run-main-9f602e1 was trained with it.
LABELLED = {"in_dim": [1, 4, 4], "input_type": "continuous", "encoder_proj": [8, 6, 11], "n_groups": 2,
            "n_iterations": 2, "zhat_init_value": 0.5, "objects_per_sample": 2, "class_cost_x": 0.1,
            "labeled_samples": 20, "lr": 0.003, "batch_size": 20, "valid_batch_size": 20, "num_epochs": 2, "seed": 1}


def write_labelled_h5(path):
    """Continuous 4x4 images with two digit labels each (balanced over 10 classes) and masks:
    train 200, valid 40, test 40."""
    rng = np.random.RandomState(1)

    def split(n):
        return {"features": rng.rand(n, 1, 4, 4).astype(np.float32),
                "mask": np.eye(3, dtype=np.float32)[rng.randint(0, 3, (n, 16))].transpose(0, 2, 1).reshape(n, 3, 1, 4, 4),
                "targets": np.stack([np.arange(n) % 10, rng.randint(0, 10, n)], axis=1).astype(np.int64)}

    with h5py.File(path, "w") as f:
        write_fuel_file(f, {"train": split(200), "valid": split(40), "test": split(40)})
    return str(path)


def assert_one_line_error(result, message=""):
    """The contract of every user error (README, "Commands"): exactly one line `Error: ...` on stderr,
    holding `message`, and exit status 2. `result`: a click Result of `invoke` or a
    subprocess.CompletedProcess. Click's own usage errors (a missing required option, a value outside
    a choice) print its usage lines first: the documented exception, checked apart where tested."""
    status = result.exit_code if hasattr(result, "exit_code") else result.returncode
    lines = result.stderr.splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], \
        f"exit status {status}, stderr: {result.stderr!r}"

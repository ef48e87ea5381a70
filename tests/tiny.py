"""What several test files share: the tiny Tagger config they train and the CLI runner."""
from click.testing import CliRunner

from tagger_torch.cli import main

# A tiny Shapes model: 300 training images (conftest.small_shapes_h5) in batches of 50 = 6 steps per epoch.
TINY = {"encoder_proj": [24, 12, 8], "n_groups": 3, "n_iterations": 2, "lr": 0.002, "batch_size": 50,
        "valid_batch_size": 50, "num_epochs": 2, "seed": 3}


def invoke(*args):
    """Run `tagger-torch ARGS...` in-process; click >= 8.2 keeps result.stderr apart."""
    return CliRunner().invoke(main, [str(a) for a in args])

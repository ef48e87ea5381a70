"""The project's standard data files: the Makefile writes the names and make-dataset lines that the
"data file not found" error names (tagger_torch/data/standard.py), datasets/shapes.h5 among them as
a link, and the design card's command trains the release's Shapes protocol from that name; every
verb that reads a data file names the command that makes a missing one."""
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tagger_torch.config import get_preset, load_config
from tagger_torch.data.standard import STANDARD_FILES
from tiny import assert_one_line_error, invoke

ROOT = Path(__file__).resolve().parent.parent


def make_commands(target):
    """The commands `make TARGET` runs in the source tree, as word lists (`make -n`, continuations joined)."""
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    done = subprocess.run(["make", "-n", "-s", "--no-print-directory", "-C", str(ROOT), target],
                          capture_output=True, text=True, check=True, timeout=60)
    return [shlex.split(line) for line in done.stdout.replace("\\\n", " ").splitlines() if line.strip()]


def made_by(target):
    """({file name in datasets/: make-dataset arguments but --out}, {link name: the file it names}) of `make TARGET`."""
    made, links = {}, {}
    for words in make_commands(target):
        if "make-dataset" in words:
            args = words[words.index("make-dataset") + 1:]
            at = args.index("--out")
            assert os.path.dirname(args[at + 1]) == "datasets", words
            made[os.path.basename(args[at + 1])] = " ".join(args[:at] + args[at + 2:])
        elif words[0] == "ln":
            assert os.path.dirname(words[-1]) == "datasets", words
            links[os.path.basename(words[-1])] = words[-2]
    return made, links


@pytest.mark.parametrize("target", ["data", "demo"])
def test_the_makefile_writes_the_standard_files(target):
    made, links = made_by(target)
    listed = {name: arguments for name, (make, arguments) in STANDARD_FILES.items() if make == f"make {target}"}
    assert {**made, **{link: made[file] for link, file in links.items()}} == listed
    assert links == ({"shapes.h5": "shapes50k_20x20.h5"} if target == "data" else {})


def test_the_design_card_command_trains_from_make_datas_shapes_name(tmp_path, monkeypatch):
    """`make data`'s Shapes line (with small splits) and its link, then the command as the design card gives it."""
    commands = make_commands("data")
    shapes = next(words for words in commands if "make-dataset" in words and "shapes" in words)
    link = next(words for words in commands if words[0] == "ln")
    monkeypatch.chdir(tmp_path)
    small = ["--n-train", 100, "--n-valid", 100, "--n-test", 10, "--n-single", 10]
    made = invoke(*shapes[shapes.index("make-dataset"):], *small)
    assert made.exit_code == 0, made.output
    subprocess.run(link, check=True)
    assert os.path.samefile("datasets/shapes.h5", "datasets/shapes50k_20x20.h5")
    result = invoke("train", "--hdf5", "datasets/shapes.h5", "--epochs", 1, "--out", tmp_path / "x")
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "x" / "config.json") == get_preset("shapes50k20x20").replace(num_epochs=1)


@pytest.mark.parametrize("name, how", [
    ("shapes.h5", "make it with `make data` (datasets/shapes.h5 of the source tree) or "
                  "`tagger-torch make-dataset shapes --out {path}`"),
    ("freq20-2mnist.h5", "make it with `make data` (datasets/freq20-2mnist.h5 of the source tree) or "
                         "`tagger-torch make-dataset freq20-2mnist --out {path}`"),
    ("mine.h5", "make one with `tagger-torch make-dataset NAME --out PATH` (docs/data.md)"),
], ids=["shapes", "freq20", "other"])
@pytest.mark.parametrize("verb", ["train", "evaluate", "visualize", "calibrate", "data-summary"])
def test_a_missing_data_file_names_the_command_that_makes_it(tmp_path, trained_run, verb, name, how):
    path = str(tmp_path / "datasets" / name)
    run = ["--run", trained_run, "--device", "cpu"]
    args = {"train": ["--hdf5", path, "--out", tmp_path / "run"],
            "evaluate": [*run, "--hdf5", path],
            "visualize": [*run, "--hdf5", path, "--out", tmp_path / "f.png"],
            "calibrate": [*run, "--hdf5", path, "--out", tmp_path / "stats.npz"],
            "data-summary": [path]}[verb]
    assert_one_line_error(invoke(verb, *args), f"Error: data file not found: {path}; {how.format(path=path)}")

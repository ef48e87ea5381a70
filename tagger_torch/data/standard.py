"""The project's standard data sets: their file names, the `make-dataset` lines that make them, and
the make target that writes them into datasets/. The Makefile's `data` and `demo` targets write
theirs (tests/test_standard_files.py checks its lines against these); the reproduction plan
(tagger_torch/reproduce/plan.py) trains on them; the one-line error of a missing data file names the
command that makes it (`h5layout.open_fuel_file`)."""
from __future__ import annotations

import os
from typing import Dict, NamedTuple, Optional, Tuple


class DataSet(NamedTuple):
    file: str  # its file name (under datasets/ of the source tree, or a run's data folder)
    make: Tuple[str, ...]  # the `tagger-torch make-dataset` arguments that make it, before --out
    target: Optional[str] = None  # the make target that writes it into datasets/, if any


# data set name -> its file, how to make it
DATA_SETS: Dict[str, DataSet] = {
    "shapes": DataSet("shapes50k_20x20.h5", ("shapes",), "make data"),
    "shapes-2shapes": DataSet("shapes50k_20x20_2shapes.h5", ("shapes", "--n-shapes", "2")),
    "shapes-4shapes": DataSet("shapes50k_20x20_4shapes.h5", ("shapes", "--n-shapes", "4")),
    "freq20-1mnist": DataSet("freq20-1mnist.h5", ("freq20-1mnist",), "make data"),
    "freq20-2mnist": DataSet("freq20-2mnist.h5", ("freq20-2mnist",), "make data"),
    "mnist": DataSet("mnist.h5", ("mnist",)),
    "shapes-demo": DataSet("shapes-demo.h5", ("shapes", "--n-train", "10000", "--n-valid", "1000", "--n-test", "1000",
                                              "--n-single", "100"), "make demo"),
}

# file name -> (the make target that writes it into datasets/ or None, its make-dataset arguments)
STANDARD_FILES: Dict[str, Tuple[Optional[str], str]] = {
    **{d.file: (d.target, " ".join(d.make)) for d in DATA_SETS.values()},
    "shapes.h5": ("make data", "shapes"),  # the design card's name: `make data` links it to shapes50k_20x20.h5
}


def how_to_make(path: str) -> str:
    """The command that makes the data file `path`: for a standard file its make target (if any) and
    its make-dataset line, for any other file the make-dataset verb."""
    name = os.path.basename(path)
    if name not in STANDARD_FILES:
        return "make one with `tagger-torch make-dataset NAME --out PATH` (docs/data.md)"
    target, arguments = STANDARD_FILES[name]
    dataset, _, sizes = arguments.partition(" ")
    line = f"tagger-torch make-dataset {dataset} --out {path}" + (f" {sizes}" if sizes else "")
    if target is None:
        return f"make it with `{line}`"
    return f"make it with `{target}` (datasets/{name} of the source tree) or `{line}`"

"""The project's standard data files and the commands that make them, for the one-line error of a
missing data file (`h5layout.open_fuel_file`). The Makefile's `data` and `demo` targets write them;
tests/test_data_cli.py checks that its make-dataset lines are the ones below."""
from __future__ import annotations

import os
from typing import Dict, Tuple

# file name -> (the make target that writes it into datasets/, the make-dataset arguments that make it)
STANDARD_FILES: Dict[str, Tuple[str, str]] = {
    "shapes50k_20x20.h5": ("make data", "shapes"),
    "shapes.h5": ("make data", "shapes"),  # the design card's name: `make data` links it to shapes50k_20x20.h5
    "freq20-1mnist.h5": ("make data", "freq20-1mnist"),
    "freq20-2mnist.h5": ("make data", "freq20-2mnist"),
    "shapes-demo.h5": ("make demo", "shapes --n-train 10000 --n-valid 1000 --n-test 1000 --n-single 100"),
}


def how_to_make(path: str) -> str:
    """The command that makes the data file `path`: for a standard file its make target and its
    make-dataset line, for any other file the make-dataset verb."""
    name = os.path.basename(path)
    if name not in STANDARD_FILES:
        return "make one with `tagger-torch make-dataset NAME --out PATH` (docs/data.md)"
    target, arguments = STANDARD_FILES[name]
    dataset, _, sizes = arguments.partition(" ")
    line = f"tagger-torch make-dataset {dataset} --out {path}" + (f" {sizes}" if sizes else "")
    return f"make it with `{target}` (datasets/{name} of the source tree) or `{line}`"

"""The trained models this project ships (`--pretrained NAME`): names, folders, and where they are found.

The weights live in the git checkout, in `results/NAME/` (written by `tagger-torch reproduce publish
NAME`, docs/reproduce.md), not in the installed package. `resolve_pretrained(name)` looks
for that folder, in order, under
  1. the source tree: `results/` beside the `tagger_torch` package (source checkouts and
     `pip install -e .`),
  2. `results/` under the current directory (a checkout beside a non-editable install),
and returns the first folder that holds a config and a parameter file. When `$TAGGER_RESULTS` is
set, that folder is searched instead of both (tests point it at a temporary one). Every verb that takes
`--pretrained` (evaluate, visualize; train's `--load-from` also takes a name) resolves it here.
"""
from __future__ import annotations

import os
from typing import Dict, List

from .errors import TaggerError
from .reproduce.plan import SHIPPED, PlannedRun
from .training.rundir import CONFIG, PARAMS, PARAMS_FP16, run_params_path

RESULTS_ENV = "TAGGER_RESULTS"  # when set, the one folder searched for NAME/ (tests, other layouts)
RESULTS_DIR = "results"  # the folder of published runs in a checkout


# name -> its planned run (reproduce/plan.py): the runs of the plan that ship, whose folder is results/NAME/
PRETRAINED: Dict[str, PlannedRun] = SHIPPED


def source_results_dir() -> str:
    """`results/` of the source tree: the folder above the tagger_torch package."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), RESULTS_DIR)


def results_dirs() -> List[str]:
    """The folders searched for NAME/, in order, without repeats."""
    if os.environ.get(RESULTS_ENV):
        return [os.path.abspath(os.environ[RESULTS_ENV])]
    found = [source_results_dir()]
    if os.path.abspath(RESULTS_DIR) != found[0]:
        found.append(os.path.abspath(RESULTS_DIR))
    return found


def known_names() -> str:
    return ", ".join(PRETRAINED)


def resolve_pretrained(name: str) -> str:
    """The folder of pretrained model `name` (holding config.json and its weights).

    TaggerError (one line) for an unknown name, listing the known ones; or when no searched folder
    holds the model's files yet, saying where it looked."""
    if name not in PRETRAINED:
        raise TaggerError(f"unknown pretrained model '{name}' (known: {known_names()})")
    searched = []
    for root in results_dirs():
        folder = os.path.join(root, name)
        if os.path.isfile(os.path.join(folder, CONFIG)) and run_params_path(folder) is not None:
            return folder
        searched.append(folder)
    raise TaggerError(f"pretrained model '{name}' is not shipped yet: no {CONFIG} with {PARAMS_FP16} or "
                      f"{PARAMS} in {', '.join(searched)} (`tagger-torch reproduce "
                      f"run {name}` trains it and writes results/{name}/)")


def pretrained_or_path(value: str) -> str:
    """`--load-from`'s value: an existing path as it is, else a pretrained model's folder by name
    (a value that is neither gives the path error of the caller)."""
    if os.path.exists(value) or value not in PRETRAINED:
        return value
    return resolve_pretrained(value)

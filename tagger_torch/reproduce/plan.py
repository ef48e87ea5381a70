"""The reproduction plan: every run behind the paper's tables, as data, in the order the cores take them.

One `PlannedRun` per run directory (`--runs-dir/NAME`): its preset and config changes, its data set,
the run it starts from (stage 2 loads stage 1), the epochs of the paper's protocol, how it is scored,
the results cell it fills with the paper's value beside it, and whether it ships as a pretrained model
(`--pretrained NAME`). `tagger-torch reproduce` (run, status, publish) reads nothing else to decide what
runs next. Pure Python (no torch): `pretrained.py` and the command line read it at start-up.

The paper's values: Greff et al., NIPS 2016, Table 1 (Shapes: AMI and denoising cost at T = 1..5,
Tagger with BatchNorm and Tagger* with LayerNorm) and Table 2 (Freq20-MNIST test error %, mean ± sd
over 5 runs); the plain-MNIST Ladder check: Rasmus et al. 2015, Table 1 (1000 labels, 0.84 ± 0.08 %).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from ..config import from_dict, get_preset
from ..data.standard import DATA_SETS
from ..errors import TaggerError

# the data sets the plan trains on: name -> (`make-dataset` arguments, file name in the data folder)
DATA_FILES: Dict[str, Tuple[Tuple[str, ...], str]] = {name: (d.make, d.file) for name, d in DATA_SETS.items()}


@dataclass(frozen=True)
class Flattened:
    """A baseline's run ends before its epoch cap once its validation class error has flattened: the
    best of the last `window` epochs is not `tol` points below the best of the epochs before them."""

    window: int  # epochs compared against the ones before them
    min_epochs: int  # never stop before this many epochs
    tol: float = 0.3  # points (%) of validation class error


@dataclass(frozen=True)
class Case:
    """One scoring of a finished run: `evaluate` of a split of a data set, as a results file."""

    key: str  # the results file: NAME/<key>.json (published models) or the run's <key>.json
    data: str  # a DATA_FILES name
    split: str  # test, valid or single
    groups: Optional[int] = None  # K at evaluation (None: the trained K)
    description: str = ""  # one line for the results README
    panel: str = ""  # the row label of its first example in the published figure ("": not drawn)


@dataclass(frozen=True)
class Cell:
    """The results cell a run fills, and the paper's value for it."""

    table: str  # "table1" (Shapes, per iteration), "table2" (Freq20-MNIST test error %), "check" (beside
    #            Table 2), "norms" (the LayerNorm placements, results/norms/)
    row: str  # the model's row: "tagger", "fc-ladder", ... (Table 1: the norm, "batch" or "layer")
    column: str  # "TextureMNIST2, 1k labels"; Table 1: "Shapes"
    paper: str  # the paper's value, as printed


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan (see the module docstring)."""

    name: str  # its run directory under --runs-dir; its results files and pretrained model use it too
    preset: str  # tagger_torch.config.PRESETS
    data: str  # the DATA_FILES name it trains on (and is scored on, unless `cases` say otherwise)
    epochs: int  # the protocol's epochs (the config's num_epochs)
    changes: Mapping[str, object] = field(default_factory=dict)  # config fields changed from the preset
    after: Optional[str] = None  # the run whose parameters it starts from (`train --load-from`)
    flattened: Optional[Flattened] = None  # stop once validation flattens (baselines), else all epochs
    # validate after every Nth epoch and the last (`train --validate-every`): monitoring only, the trained
    # parameters do not depend on it; 1 where a stop rule (`flattened`) reads each epoch's validation
    validate_every: int = 1
    iterations: Optional[int] = None  # T of the scoring (None: the trained T)
    cases: Tuple[Case, ...] = ()  # its scorings (default: the test split of `data`)
    cell: Optional[Cell] = None  # the results cell it fills
    ship: bool = False  # published as results/NAME/, loadable with `--pretrained NAME`
    description: str = ""  # one line: what the model is (help texts, the results README)

    def __post_init__(self):
        if self.validate_every < 1 or (self.flattened is not None and self.validate_every != 1):
            raise TaggerError(f"planned run {self.name}: validate_every must be 1 with a stop rule (flattened), "
                              f"else >= 1 (got {self.validate_every})")

    @property
    def scorings(self) -> Tuple[Case, ...]:
        """Its scorings; the first is the one its results cell and float16 check use."""
        return self.cases or (Case("test", self.data, "test", description="test split"),)

    def config(self):
        """Its config: the preset with `changes` and the protocol's epochs."""
        preset = get_preset(self.preset)
        return from_dict({**preset.to_dict(), **self.changes, "num_epochs": self.epochs})


PAPER_TABLE2 = {  # (model, digits, labels) -> test error %
    ("fc-mlp", 1, "50k"): "31.1 ± 2.2", ("fc-mlp", 1, "1k"): "89.0 ± 0.2",
    ("fc-mlp", 2, "50k"): "55.2 ± 1.0", ("fc-mlp", 2, "1k"): "79.4 ± 0.3",
    ("fc-ladder", 1, "50k"): "7.2 ± 0.1", ("fc-ladder", 1, "1k"): "30.5 ± 0.5",
    ("fc-ladder", 2, "50k"): "41.1 ± 0.2", ("fc-ladder", 2, "1k"): "68.5 ± 0.2",
    ("tagger", 1, "50k"): "4.0 ± 0.3", ("tagger", 1, "1k"): "10.5 ± 0.9",
    ("tagger", 2, "50k"): "7.9 ± 0.3", ("tagger", 2, "1k"): "24.9 ± 1.8",
    ("convnet", 1, "50k"): "3.9 ± 0.3", ("convnet", 1, "1k"): "52.4 ± 5.3",
    ("convnet", 2, "50k"): "12.6 ± 0.4", ("convnet", 2, "1k"): "79.1 ± 0.8",
}
PAPER_TABLE1 = {"batch": "0.79 ± 0.034", "layer": "0.97 ± 0.009"}  # AMI at T = 5, median of 20 seeds
MODEL_TITLES = {"fc-mlp": "FC MLP", "fc-ladder": "FC Ladder", "tagger": "FC Tagger", "convnet": "ConvNet"}
TABLE2_COLUMNS = tuple((digits, labels) for digits in (1, 2) for labels in ("50k", "1k"))


def column(digits: int, labels: str) -> str:
    return f"TextureMNIST{digits}, {labels} labels"


def _table2(model: str, digits: int, labels: str) -> Cell:
    return Cell("table2", model, column(digits, labels), PAPER_TABLE2[(model, digits, labels)])


# Tagger's runs (both stages, Shapes) validate after every 5th epoch: a validation costs 6-8 % of an
# epoch (Freq20 stage 1: 61-80 s against 899-1067 s of training on a 2-core AMD EPYC) and no rule
# reads it; the baselines validate every epoch (their stop rule reads each one)
VALIDATE_EVERY = 5
# Table 1's scorings of a Shapes model (the paper's Figure 4a cases beside the test split)
_SHAPES_CASES = (
    Case("test", "shapes", "test", description="test split (Table 1a)"),
    Case("groups2", "shapes", "test", 2, "A: test split scored with K = 2 groups", "A: K=2"),
    Case("shapes2", "shapes-2shapes", "test", None, "B: test split of the 2-shape data", "B: 2 shapes"),
    Case("shapes4", "shapes-4shapes", "test", None, "C: test split of the 4-shape data", "C: 4 shapes"),
    Case("single", "shapes", "single", description="single split (one shape per image)"),
)


def _tagger_runs(digits: int):
    """Tagger on Freq20-{digits}MNIST: stage 1 unsupervised, then stage 2 with 1000 and with all labels."""
    data, stage1 = f"freq20-{digits}mnist", f"freq20-{digits}mnist-tagger-stage1"
    texture = f"TextureMNIST{digits}"
    return {
        "stage1": PlannedRun(
            stage1, f"{data}-pretrain", data, 150, iterations=5, ship=True, validate_every=VALIDATE_EVERY,
            cases=(Case("valid", data, "valid", description="validation split, T = 1..5"),),
            description=f"Tagger stage 1 (unsupervised, 3000-2000-1000, K=4, T=3) on {texture}, 150 epochs"),
        "1k": PlannedRun(
            f"{data}-tagger-1k", f"{data}-continue-1k", data, 50, after=stage1, validate_every=VALIDATE_EVERY,
            cell=_table2("tagger", digits, "1k"), ship=True,
            description=f"Tagger stage 2 with 1000 labels (T=4) on {texture}, from stage 1"),
        "50k": PlannedRun(
            f"{data}-tagger-50k", f"{data}-continue", data, 50, {"labeled_samples": None}, after=stage1,
            validate_every=VALIDATE_EVERY, cell=_table2("tagger", digits, "50k"), ship=True,
            description=f"Tagger stage 2 with all 50 000 labels (T=4) on {texture}, from stage 1"),
    }


def _baseline(model: str, digits: int, labels: str, epochs: int, flattened: Optional[Flattened] = None):
    preset = f"freq20-{digits}mnist-{model}" + ("-1k" if labels == "1k" else "")
    return PlannedRun(preset, preset, f"freq20-{digits}mnist", epochs, flattened=flattened,
                      cell=_table2(model, digits, labels))


_F1, _F2 = _tagger_runs(1), _tagger_runs(2)

# The LayerNorm placements (docs/SPEC.md section 8) against today's LayerNorm and BatchNorm: Shapes,
# 20 epochs, two seeds each, scored on the validation split at T = 1..5 (results/norms/)
NORM_PRESETS = {"batch": "shapes50k20x20", "layer": "shapes50k20x20-ln", "layer-groups": "shapes50k20x20-ln-groups",
                "layer-gain": "shapes50k20x20-ln-gain", "layer-ladder": "shapes50k20x20-ln-ladder",
                "layer-tagger": "shapes50k20x20-ln-tagger"}
NORM_SEEDS = (10, 11)
_NORM_RUNS = tuple(
    PlannedRun(f"norms-{norm}-s{seed}", preset, "shapes", 20, {"seed": seed}, iterations=5,
               validate_every=VALIDATE_EVERY,
               cases=(Case("valid", "shapes", "valid", description="validation split, T = 1..5"),),
               cell=Cell("norms", norm, f"seed {seed}", PAPER_TABLE1.get(norm, "-")))
    for norm, preset in NORM_PRESETS.items() for seed in NORM_SEEDS)

# In priority order: the TextureMNIST2 Tagger stage 1 and its 1000-label stage 2 (the paper's headline),
# the Ladder's check on plain MNIST and its 1000-label cells, the LayerNorm placements, then the rest.
PLAN: Tuple[PlannedRun, ...] = (
    _F2["stage1"],
    _F2["1k"],
    # the Ladder against its own paper first: a miss is explained before the TextureMNIST cells are spent
    PlannedRun("mnist-fc-ladder-1k", "mnist-fc-ladder-1k", "mnist", 150,
               cell=Cell("check", "fc-ladder", "MNIST, 1k labels", "0.84 ± 0.08 (Rasmus et al. 2015)")),
    _baseline("fc-ladder", 2, "1k", 150),
    _baseline("fc-ladder", 1, "1k", 150),
    *_NORM_RUNS,
    _F2["50k"],
    _F1["stage1"],
    _F1["1k"],
    _F1["50k"],
    _baseline("fc-ladder", 2, "50k", 150),
    _baseline("fc-ladder", 1, "50k", 150),
    _baseline("convnet", 2, "50k", 60, Flattened(5, 10)),
    _baseline("convnet", 1, "50k", 60, Flattened(5, 10)),
    _baseline("convnet", 2, "1k", 150, Flattened(10, 20)),
    _baseline("convnet", 1, "1k", 150, Flattened(10, 20)),
    _baseline("fc-mlp", 2, "50k", 60, Flattened(5, 10)),
    _baseline("fc-mlp", 1, "50k", 60, Flattened(5, 10)),
    _baseline("fc-mlp", 2, "1k", 300, Flattened(10, 20)),
    _baseline("fc-mlp", 1, "1k", 300, Flattened(10, 20)),
    PlannedRun("shapes-ln", "shapes50k20x20-ln", "shapes", 100, iterations=5, cases=_SHAPES_CASES,
               validate_every=VALIDATE_EVERY,
               cell=Cell("table1", "layer", "Shapes", PAPER_TABLE1["layer"]), ship=True,
               description="Tagger* (LayerNorm, 2000-1000-500, K=4, T=3) trained 100 epochs on Shapes, seed 10 "
                           "(the paper's Table 1, Tagger*)"),
    PlannedRun("shapes-bn", "shapes50k20x20", "shapes", 100, iterations=5, cases=_SHAPES_CASES,
               validate_every=VALIDATE_EVERY,
               cell=Cell("table1", "batch", "Shapes", PAPER_TABLE1["batch"]), ship=True,
               description="Tagger (BatchNorm, 2000-1000-500, K=4, T=3) trained 100 epochs on Shapes, seed 10 "
                           "(the paper's Table 1, Tagger)"),
)
SHIPPED: Dict[str, PlannedRun] = {run.name: run for run in PLAN if run.ship}


@dataclass(frozen=True)
class Plan:
    """Runs in priority order and the data sets they use; `PAPER` is the paper's, `load_plan` reads others."""

    runs: Tuple[PlannedRun, ...]
    data: Mapping[str, Tuple[Tuple[str, ...], str]] = field(default_factory=lambda: dict(DATA_FILES))

    def run(self, name: str) -> PlannedRun:
        """The planned run `name`; TaggerError naming the known ones otherwise."""
        for run in self.runs:
            if run.name == name:
                return run
        raise TaggerError(f"unknown run '{name}' (the plan's runs: {', '.join(r.name for r in self.runs)})")


PAPER = Plan(PLAN)


def load_plan(path: str) -> Plan:
    """A plan from a JSON file: {"data": {NAME: {"make": [make-dataset arguments], "file": FILE}},
    "runs": [{PlannedRun's fields; "cases": [{Case's fields}], "flattened": {Flattened's fields}}]}; the
    data sets add to (or replace) the paper plan's."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        data = {**DATA_FILES, **{name: (tuple(v["make"]), v["file"]) for name, v in d.get("data", {}).items()}}
        runs = []
        for r in d["runs"]:
            r = dict(r)
            r["cases"] = tuple(Case(**c) for c in r.get("cases", ()))
            r["flattened"] = Flattened(**r["flattened"]) if r.get("flattened") else None
            r["cell"] = Cell(**r["cell"]) if r.get("cell") else None
            runs.append(PlannedRun(**r))
    except OSError as e:
        raise TaggerError(f"cannot read the plan {path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise TaggerError(f"{path} is not a plan (docs/reproduce.md): {e}") from None
    plan = Plan(tuple(runs), data)
    for run in plan.runs:
        for name in [run.data] + [case.data for case in run.scorings]:
            if name not in plan.data:
                raise TaggerError(f"{path}: run {run.name} uses the data set '{name}', which the plan does not define")
        if run.after is not None:
            plan.run(run.after)
    return plan

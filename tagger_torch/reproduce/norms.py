"""results/norms/README.md: the LayerNorm placements (docs/SPEC.md section 8) after 20 epochs of the
Shapes protocol, two seeds each, against today's LayerNorm and BatchNorm at the same epochs.

Read off results/norms/NAME.json (one per finished run, `table2.write_result`) and results/progress/
(unfinished runs), so the page says the same thing for the same files.
"""
from __future__ import annotations

import os
import statistics
from typing import List

from ..files import read_json, write_text
from .plan import NORM_PRESETS, NORM_SEEDS, PLAN
from .state import CELL_FOLDERS, PROGRESS

FOLDER = CELL_FOLDERS["norms"]


def _cells(values: List[float], fmt: str) -> str:
    return " | ".join(fmt.format(v) for v in values)


def norms_readme(results: str) -> str:
    runs = {(r.cell.row, r.changes["seed"]): r for r in PLAN if r.cell is not None and r.cell.table == "norms"}
    lines = ["# LayerNorm placements on Shapes: 20 epochs, two seeds each", "",
             "Written by `tagger-torch reproduce publish` from the files of this folder; the runs are the plan's "
             "`norms-NORM-sSEED` (docs/reproduce.md): the Shapes runner with each `norm` (docs/SPEC.md section 8, "
             "docs/training.md \"LayerNorm placements\"), 20 epochs, scored on the 10 000 validation images at "
             "T = 1..5 (noise seed 0). The paper's value is its Table 1b AMI at T = 5 after full training "
             "(Tagger*: LayerNorm; Tagger: BatchNorm).", "",
             "| norm | seed | AMI T=1 | 2 | 3 | 4 | 5 | denoising cost T=1 | 2 | 3 | 4 | 5 | paper AMI (T = 5) |",
             "|---" * 13 + "|"]
    means = []
    for norm in NORM_PRESETS:
        amis = []
        for seed in NORM_SEEDS:
            run = runs[(norm, seed)]
            result = read_json(os.path.join(results, FOLDER, f"{run.name}.json"))
            if result is None:
                progress = read_json(os.path.join(results, PROGRESS, run.name, "progress.json"))
                state = (f"in progress: {progress['epochs']} of {run.epochs} epochs" if progress
                         else f"queued ({run.epochs} ep)")
                lines.append(f"| `{norm}` | {seed} | {state} |" + " |" * 9 + f" {run.cell.paper} |")
                continue
            valid = result["valid"]
            amis.append(valid["ami"][-1])
            lines.append(f"| `{norm}` | {seed} | {_cells(valid['ami'], '{:.3f}')} | "
                         f"{_cells(valid['denoising_cost'], '{:.4f}')} | {run.cell.paper} |")
        if len(amis) > 1:
            means.append(f"| `{norm}` | {statistics.mean(amis):.3f} ± {statistics.stdev(amis):.3f} | {len(amis)} |")
    if means:
        lines += ["", "| norm | AMI at T = 5, mean ± sd over seeds | seeds |", "|---|---|---|"] + means
    return "\n".join(lines) + "\n"


def write_norms(results: str) -> str:
    path = os.path.join(results, FOLDER, "README.md")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_text(path, norms_readme(results))
    return path

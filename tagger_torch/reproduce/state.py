"""Where a planned run stands, read off its run directory and the results folder only (no torch).

    RUNS_DIR/NAME/      the run's directory (`tagger-torch train`'s files: metrics.jsonl, checkpoint.pt, ...)
    RUNS_DIR/NAME/<case>.json   the scorings of a finished run (`Case.key`, e.g. test.json)
    RESULTS/table2/NAME.json    a Table-2 or check cell's result (reproduce/table2.py)
    RESULTS/norms/NAME.json     a LayerNorm placement's run (reproduce/norms.py)
    RESULTS/NAME/publish.json   a shipped model (tagger_torch.publish)
    RESULTS/progress/NAME/      an unfinished run's progress.json, curves.png and groups.png, as last
                                published, and its float16 snapshot (training/snapshot.py), which
                                continues it when RUNS_DIR/NAME has no checkpoint (another machine)
"""
from __future__ import annotations

import itertools
import os
import statistics
from dataclasses import dataclass
from typing import List, Optional

from ..files import read_json
from ..training.rundir import CHECKPOINT, METRICS, last_validated, read_metrics
from ..training.snapshot import has_snapshot
from .plan import Flattened, PlannedRun

PROGRESS = "progress"  # RESULTS/progress/NAME/: unfinished runs
TABLE2 = "table2"  # RESULTS/table2/NAME.json: Table-2 and check cells
# a cell's table -> the folder of its result files (Table 1's are the shipped models' folders)
CELL_FOLDERS = {"table2": TABLE2, "check": TABLE2, "norms": "norms"}


def last(value):
    """A metrics value: the last iteration's of a per-iteration list."""
    return value[-1] if isinstance(value, list) else value


def has_flattened(rows: List[dict], rule: Flattened) -> bool:
    """`rule` holds after the epochs of `rows`: at least min_epochs, and the best validation class
    error of the last `window` epochs is not `tol` points below the best of the ones before them."""
    errors = [last(r["valid_class_error"]) for r in rows if "valid_class_error" in r]
    if len(rows) < rule.min_epochs or len(errors) <= rule.window:
        return False
    return min(errors[-rule.window:]) > min(errors[:-rule.window]) - rule.tol


@dataclass
class RunState:
    """A planned run's state (`run_state`)."""

    run: PlannedRun
    directory: str  # RUNS_DIR/NAME
    rows: List[dict]  # its metrics.jsonl
    resumable: bool  # a checkpoint is there, or a snapshot
    finished: bool  # the protocol is done: all epochs, or the baseline's validation flattened
    result: Optional[dict]  # RESULTS/table2/NAME.json or RESULTS/NAME/publish.json, when published
    snapshot: Optional[str] = None  # RESULTS/progress/NAME when the run continues from its snapshot there

    @property
    def epochs(self) -> int:
        return self.rows[-1]["epoch"] if self.rows else 0

    @property
    def seconds_per_epoch(self) -> Optional[float]:
        """The median of the last 5 epochs' training seconds on the processor that trained the last epoch
        (each metrics line's `processor`), plus the last validation's seconds shared over the epochs it
        covers (`validate_every`)."""
        last = self.rows[-1].get("processor") if self.rows else None
        same = list(itertools.takewhile(lambda r: r.get("processor") == last, reversed(self.rows)))
        times = [r.get("train_time_s", 0.0) for r in same[:5]]
        valid_s = last_validated(self.rows).get("valid_time_s", 0.0) / self.run.validate_every
        return statistics.median(times) + valid_s if times else None

    @property
    def hours_left(self) -> Optional[float]:
        if self.finished:
            return 0.0
        per_epoch = self.seconds_per_epoch
        return None if per_epoch is None else (self.run.epochs - self.epochs) * per_epoch / 3600

    @property
    def stage(self) -> str:
        """'published', 'finished' (not yet published), 'training' (started), 'snapshot' (started, its run
        directory not on this machine: `reproduce run` continues it from its snapshot), 'queued'."""
        if self.finished:
            return "published" if self.result is not None and self.result.get("epochs") == self.epochs else "finished"
        if self.snapshot is not None:
            return "snapshot"
        return "training" if self.rows or self.resumable else "queued"


def result_path(results: str, run: PlannedRun) -> str:
    """The file that says a run is published: its Table-2/check cell, else its shipped model's."""
    if run.cell is not None and run.cell.table in CELL_FOLDERS:
        return os.path.join(results, CELL_FOLDERS[run.cell.table], f"{run.name}.json")
    return os.path.join(results, run.name, "publish.json")


def protocol(run: PlannedRun) -> dict:
    """The plan's protocol of `run`, as its result files record it."""
    return {"epochs": run.epochs, "flattened": None if run.flattened is None else vars(run.flattened),
            "config": run.config().to_dict()}


def same_protocol(result: dict, run: PlannedRun) -> bool:
    """Whether a Table-2 result file was trained with the plan's protocol for its run: the same config
    (but for the epoch cap, which a flattened run's chunks set) and stop rule."""
    recorded, mine = result.get("protocol") or {}, protocol(run)

    def without_epochs(p: dict) -> dict:
        return {k: v for k, v in (p.get("config") or {}).items() if k != "num_epochs"}

    return without_epochs(recorded) == without_epochs(mine) and recorded.get("flattened") == mine["flattened"]


def published_epochs(results: str, run: PlannedRun) -> Optional[dict]:
    """{"epochs": N, ...} of what `results` holds for `run` as finished, or None."""
    found = read_json(result_path(results, run))
    if found is None:
        return None
    if "training" in found:  # a shipped model's publish.json
        return {**found, "epochs": found["training"]["epochs"]}
    return found


def run_state(run: PlannedRun, runs_dir: str, results: str) -> RunState:
    """Where `run` stands: its run directory, or, when that has no checkpoint (another machine), what
    results/ holds of it (the float16 snapshot of an unfinished run, a shipped model's metrics.jsonl, a
    Table-2 cell's epochs of the plan's protocol)."""
    directory = os.path.join(runs_dir, run.name)
    rows = read_metrics(os.path.join(directory, METRICS))
    result = published_epochs(results, run)
    resumable = os.path.isfile(os.path.join(directory, CHECKPOINT))
    snapshot = os.path.join(results, PROGRESS, run.name)
    snapshot = snapshot if not resumable and has_snapshot(snapshot) else None
    if snapshot is not None:
        rows, resumable = read_metrics(os.path.join(snapshot, METRICS)), True
    elif not rows and run.ship:
        rows = read_metrics(os.path.join(results, run.name, METRICS))
    elif not rows and result is not None and "run" in result and same_protocol(result, run):
        errors = result["run"]["valid_class_error_per_epoch"]
        rows = [{"epoch": epoch, "valid_class_error": error, "train_time_s": result["run"]["s_per_epoch"]}
                for epoch, error in zip(result["run"].get("valid_epochs", range(1, len(errors) + 1)), errors)]
    epochs = rows[-1]["epoch"] if rows else 0
    finished = epochs >= run.epochs or (run.flattened is not None and has_flattened(rows, run.flattened))
    return RunState(run, directory, rows, resumable, finished, result, snapshot)


def _cell(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def status_table(states: List[RunState]) -> str:
    """`reproduce status`: one line per planned run, in the plan's order."""
    lines = [f"{'run':<30} {'stage':<9} {'epochs':>9} {'valid cost':>10} {'valid err':>9} {'AMI':>5} {'s/epoch':>8} "
             f"{'h left':>7}  cell (paper)"]
    for s in states:
        row = last_validated(s.rows)
        cost, error, ami = (last(row[key]) if key in row else None
                            for key in ("valid_denoising_cost", "valid_class_error", "valid_ami"))
        cell = f"{s.run.cell.column}, {s.run.cell.row} ({s.run.cell.paper})" if s.run.cell else "-"
        lines.append(f"{s.run.name:<30} {s.stage:<9} {f'{s.epochs}/{s.run.epochs}':>9} {_cell(cost, '{:.4f}'):>10} "
                     f"{_cell(error, '{:.2f}'):>9} {_cell(ami, '{:.2f}'):>5} {_cell(s.seconds_per_epoch, '{:.0f}'):>8} "
                     f"{_cell(s.hours_left, '{:.1f}'):>7}  {cell}")
    return "\n".join(lines)

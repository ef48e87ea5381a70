"""Table 2 (and the plain-MNIST check) in results/: one JSON file per cell's run, and the README that
sets each cell beside the paper's value. Everything is read off results/ (no run directory), so the
README says the same thing for the same files, on any machine.

    results/table2/NAME.json      a finished run's cell: its test class error, protocol and facts
    results/progress/NAME/        an unfinished run as last published: progress.json, curves.png (and a
                                  grouping run's groups.png, redrawn after each validation) and the
                                  float16 snapshot that continues it on another machine
    results/table2/README.md      the table, the rows without a result, and each run's facts
"""
from __future__ import annotations

import datetime
import json
import os
import re
from typing import Dict, List, Optional

from ..files import read_json, write_text
from ..precision import cpu_bf16_native, cpu_capability, cpu_model
from ..training.rundir import CHECKPOINT, CONFIG, CURVES, RUN, last_validated
from ..training.snapshot import write_snapshot
from .plan import MODEL_TITLES, PLAN, TABLE2_COLUMNS, PlannedRun, column
from .state import CELL_FOLDERS, PROGRESS, TABLE2, RunState, last, protocol, same_protocol

BEGIN, END = "<!-- table2:begin -->", "<!-- table2:end -->"  # README.md's Table 2 section
GROUPS_PICTURE = "groups.png"  # results/progress/NAME/: a grouping run's validation examples, redrawn per validation
GROUPS_EXAMPLES = 6  # the validation examples it draws


def hours(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds >= 36000:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def run_facts(state: RunState) -> dict:
    """Epochs, times, validation error per epoch and config of a run directory."""
    rows = state.rows
    train_s = sum(r.get("train_time_s") or 0 for r in rows)
    valid_s = sum(r.get("valid_time_s") or 0 for r in rows)
    validated = [r for r in rows if "valid_class_error" in r]
    return {"run_dir": os.path.abspath(state.directory), "epochs": state.epochs,
            "steps": rows[-1].get("steps") if rows else 0, "train_s": round(train_s, 1), "valid_s": round(valid_s, 1),
            "s_per_epoch": round((train_s + valid_s) / len(rows), 1) if rows else None,
            "valid_class_error_per_epoch": [round(last(r["valid_class_error"]), 3) for r in validated],
            "valid_epochs": [r["epoch"] for r in validated],  # which (`validate_every`)
            "config": read_json(os.path.join(state.directory, CONFIG)),
            "run": read_json(os.path.join(state.directory, RUN))}


def machine() -> dict:
    return dict(cpu=cpu_model(), cpu_capability=cpu_capability(), cpu_bf16_native=cpu_bf16_native(),
                cores=os.cpu_count(), written=datetime.datetime.now().isoformat(timespec="seconds"),
                load_avg=[round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None)


def write_result(results: str, state: RunState, scored: dict, stage1: Optional[RunState]) -> str:
    """RESULTS/<cell's folder>/NAME.json for the finished run of `state`, scored by `scored` (its first
    scoring: `evaluate`'s JSON, kept under the scoring's key, e.g. "test")."""
    run = state.run
    result = {"name": run.name, "table": run.cell.table, "model": run.cell.row, "column": run.cell.column,
              "paper": run.cell.paper, "epochs": state.epochs,
              "stopped": "epochs" if state.epochs >= run.epochs else "flattened", "protocol": protocol(run)}
    if "class_error" in scored:
        result.update(test_class_error=last(scored["class_error"]), test_class_cost=last(scored["class_cost"]))
    result.update({run.scorings[0].key: scored, "run": run_facts(state), **machine()})
    if stage1 is not None:
        result["stage1"] = run_facts(stage1)
    path = os.path.join(results, CELL_FOLDERS[run.cell.table], f"{run.name}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_text(path, json.dumps(result, indent=2) + "\n")
    return path


def write_progress(results: str, state: RunState) -> str:
    """results/progress/NAME/progress.json (and curves.png beside it) of an unfinished run, groups.png when
    its last epoch scored the grouping (`valid_ami`), and its float16 snapshot (training/snapshot.py)
    when its checkpoint stands at an epoch's end."""
    from ..visualize import plot_curves  # matplotlib only when a progress picture is drawn

    folder = os.path.join(results, PROGRESS, state.run.name)
    os.makedirs(folder, exist_ok=True)
    rows = state.rows
    plot_curves(rows, os.path.join(folder, CURVES))
    facts = run_facts(state)
    facts.pop("run_dir")
    progress = {"name": state.run.name, "epochs": state.epochs, "protocol_epochs": state.run.epochs,
                "last": rows[-1] if rows else None, "last_validated": last_validated(rows) or None,
                "seconds_per_epoch": state.seconds_per_epoch,
                "hours_left": state.hours_left, **facts, **machine()}
    write_text(os.path.join(folder, "progress.json"), json.dumps(progress, indent=2) + "\n")
    if rows and "valid_ami" in rows[-1]:
        write_groups_picture(state, os.path.join(folder, GROUPS_PICTURE))
    if os.path.isfile(os.path.join(state.directory, CHECKPOINT)):
        write_snapshot(state.directory, folder)
    return folder


def write_groups_picture(state: RunState, path: str) -> None:
    """The grouping of the first `GROUPS_EXAMPLES` validation examples by the run's parameters after its
    last epoch, at T = 1 .. the plan's scoring T (`plot_example_rows`: one row per example); nothing
    when the data file the run trained on is not on this machine."""
    from ..data import load_split
    from ..training.rundir import load_model
    from ..visualize import plot_example_rows, run_examples

    hdf5 = (read_json(os.path.join(state.directory, RUN)) or {}).get("hdf5")
    if not hdf5 or not os.path.isfile(hdf5):
        return
    config, model = load_model(state.directory)
    T = state.run.iterations or config.n_iterations
    arrays = load_split(hdf5, "valid", ("features", "mask"), limit=config.valid_batch_size)
    x = arrays["features"].reshape(arrays["features"].shape[0], -1)  # (B, D)
    examples = run_examples(model, x, range(min(GROUPS_EXAMPLES, x.shape[0])), arrays["mask"], n_groups=None,
                            n_iterations=T, seed=0, remove_group=None)
    plot_example_rows([(f"valid #{ex['index']}", ex) for ex in examples], config.in_dim, path,
                      f"{state.run.name} after epoch {state.epochs}: validation examples, iterations 1..{T}")


def _result_text(result: dict) -> str:
    run = result["run"]
    text = f"**{result['test_class_error']:.1f}** ({run['epochs']} ep, {hours(run['train_s'] + run['valid_s'])}"
    if "stage1" in result:
        s1 = result["stage1"]
        text += f"; stage 1: {s1['epochs']} ep, {hours(s1['train_s'] + s1['valid_s'])}"
    return text + ")"


def _progress_text(results: str, run: PlannedRun, link: str) -> str:
    """'in progress: N of M epochs' with the last validation error % (or the grouping's AMI), stage 1
    for a stage 2 not yet started, or 'queued'."""
    for name, label in ((run.name, ""), (run.after, "stage 1 ")):
        progress = read_json(os.path.join(results, PROGRESS, name, "progress.json")) if name else None
        if progress is not None:
            error, validated = progress["valid_class_error_per_epoch"], progress.get("last_validated") or {}
            if error and not label:
                score = f", valid error {error[-1]:.1f} %"
            elif "valid_ami" in validated:
                score = f", valid AMI {validated['valid_ami'][-1]:.2f} after epoch {validated['epoch']}"
            else:
                score = ""
            groups = (f", [groups]({link}{name}/{GROUPS_PICTURE})"
                      if os.path.isfile(os.path.join(results, PROGRESS, name, GROUPS_PICTURE)) else "")
            return (f"in progress: {label}{progress['epochs']} of {progress['protocol_epochs']} epochs{score} "
                    f"([curve]({link}{name}/{CURVES}){groups})")
    return f"queued ({run.epochs} ep)" if run.after is None else f"queued after {run.after}"


def collect(results: str) -> Dict[str, dict]:
    """name -> its result file, for every run of the plan with one."""
    found = {}
    for run in (r for r in PLAN if r.cell is not None and CELL_FOLDERS.get(r.cell.table) == TABLE2):
        result = read_json(os.path.join(results, TABLE2, f"{run.name}.json"))
        if result is not None:
            found[run.name] = result
    return found


def cell_text(results: str, run: PlannedRun, found: Dict[str, dict], link: str) -> str:
    """A cell: the result of the plan's protocol, else what stands (an earlier protocol's result beside);
    `link`: the folder of results/progress/ as seen from the page the cell is on."""
    result = found.get(run.name)
    if result is not None and same_protocol(result, run):
        return _result_text(result)
    now = _progress_text(results, run, link)
    return now if result is None else f"{now}; earlier protocol: {_result_text(result)}"


def table2_markdown(results: str, link: str) -> str:
    """Table 2 beside the paper's values (the README.md section and results/table2/README.md's top);
    `link`: results/progress/ as seen from the page."""
    found = collect(results)
    cells = {(r.cell.row, r.cell.column): r for r in PLAN if r.cell is not None and r.cell.table == "table2"}
    lines = ["| model | " + " | ".join(column(d, n) for d, n in TABLE2_COLUMNS) + " |", "|---" * 5 + "|"]
    for model, title in MODEL_TITLES.items():
        row = []
        for digits, labels in TABLE2_COLUMNS:
            run = cells[(model, column(digits, labels))]
            row.append(f"{cell_text(results, run, found, link)} \\| paper {run.cell.paper}")
        lines.append(f"| {title} | " + " | ".join(row) + " |")
    checks = [r for r in PLAN if r.cell is not None and r.cell.table == "check"]
    for run in checks:
        lines += ["", f"Check, {MODEL_TITLES[run.cell.row]} on {run.cell.column}: {cell_text(results, run, found, link)} "
                      f"\\| {run.cell.paper}"]
    return "\n".join(lines)


def _short(command: str) -> str:
    return re.sub(r"\S*/(datasets|data)/", r"\1/", command)


def _run_section(result: dict) -> List[str]:
    run, test = result["run"], result["test"]
    stopped = ("its validation class error flattened" if result["stopped"] == "flattened"
               else "the protocol's epochs")
    capability = f" ({result['cpu_capability']})" if result.get("cpu_capability") else ""  # older files lack it
    lines = [f"### {result['name']}: {result['test_class_error']:.2f} % (paper {result['paper']})", "",
             f"* {run['epochs']} epochs ({stopped}); training {hours(run['train_s'])} + validation "
             f"{hours(run['valid_s'])} ({run['s_per_epoch']} s per epoch); test split at T = "
             f"{test.get('iterations', '-')}, {test['seconds']:.0f} s; written {result['written']} on {result['cpu']}"
             f"{capability}; load average then {result.get('load_avg')}."]
    errors = run["valid_class_error_per_epoch"]
    every_epoch = list(range(1, len(errors) + 1))
    epochs = run.get("valid_epochs", every_epoch)
    if errors and epochs == every_epoch:
        lines.append("* validation class error per epoch: " + ", ".join(f"{e:.1f}" for e in errors) + ".")
    elif errors:
        lines.append("* validation class error after epoch "
                     + ", ".join(f"{n}: {e:.1f}" for n, e in zip(epochs, errors)) + ".")
    if "stage1" in result:
        s1 = result["stage1"]
        lines.append(f"* stage 1: {s1['epochs']} epochs, {hours(s1['train_s'] + s1['valid_s'])}.")
    if run.get("commands"):
        lines.append("* commands: " + "; ".join(f"`{_short(c)}`" for c in run["commands"]))
    return lines + [""]


def table2_readme(results: str) -> str:
    """The text of results/table2/README.md."""
    found = collect(results)
    lines = ["# Table 2: test error % on Freq20-MNIST (TextureMNIST), beside the paper", "",
             "Written by `tagger-torch reproduce publish` from the files of this folder (one per finished run) and "
             "of `results/progress/` (unfinished runs); the runs, their order and protocols are the plan of "
             "`tagger_torch/reproduce/plan.py` (docs/reproduce.md). Each cell: **our test class error %** (epochs, "
             "wall time of training and validation) | the paper's mean ± sd over 5 runs. One run (seed 1) per cell "
             "here. Error: SPEC 6's rule (top-1; for two digits the top two against both labels), "
             "`tagger_torch.costs.classification_error` for every model. Chance: 90 % (1 digit), 80 % (2 digits). "
             "A cell trained with an earlier protocol than the plan's shows that result beside the plan's run.", "",
             table2_markdown(results, f"../{PROGRESS}/"), "", "## The runs", ""]
    for run in PLAN:
        if run.name in found:
            lines += _run_section(found[run.name])
    return "\n".join(lines).rstrip() + "\n"


def write_table2(results: str) -> str:
    path = os.path.join(results, TABLE2, "README.md")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_text(path, table2_readme(results))
    return path


def update_readme_table2(readme: str, results: str) -> bool:
    """Put Table 2 between BEGIN and END of `readme`; False when it has no such section."""
    if not os.path.isfile(readme):
        return False
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    link = os.path.relpath(os.path.join(results, PROGRESS), os.path.dirname(os.path.abspath(readme))) + "/"
    write_text(readme, f"{head}{BEGIN}\n\n{table2_markdown(results, link)}\n\n{END}{rest.split(END, 1)[1]}")
    return True


"""The helpers of scripts/table2.sh: when a run has flattened, a run's result file, the results table.

    python scripts/table2.py epochs RUN_DIR                      # finished epochs (0 without a run)
    python scripts/table2.py flattened RUN_DIR --window K --min-epochs M --max-epochs N [--tol T]
        # exit 0 when the run is done: N epochs, or (M epochs or more and) validation class error
        # flattened: the best of the last K epochs is not T points (%) below the best before them;
        # exit 3 while it should train on (any other status is a failure)
    python scripts/table2.py result NAME RUN_DIR TEST_JSON --results DIR   # DIR/NAME.json
    python scripts/table2.py collect --results DIR [--runs RUNS_DIR]      # DIR/README.md

It runs with the venv's python (table2.sh's VENV): the standard library and tagger_torch.precision.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import re
import sys

from tagger_torch.precision import cpu_bf16_native, cpu_capability, cpu_model

# the paper's Table 2: test error %, mean +- sd over 5 runs (model, digits, labels) -> text
PAPER = {
    ("fc-mlp", 1, "50k"): "31.1 ± 2.2", ("fc-mlp", 1, "1k"): "89.0 ± 0.2",
    ("fc-mlp", 2, "50k"): "55.2 ± 1.0", ("fc-mlp", 2, "1k"): "79.4 ± 0.3",
    ("fc-ladder", 1, "50k"): "7.2 ± 0.1", ("fc-ladder", 1, "1k"): "30.5 ± 0.5",
    ("fc-ladder", 2, "50k"): "41.1 ± 0.2", ("fc-ladder", 2, "1k"): "68.5 ± 0.2",
    ("tagger", 1, "50k"): "4.0 ± 0.3", ("tagger", 1, "1k"): "10.5 ± 0.9",
    ("tagger", 2, "50k"): "7.9 ± 0.3", ("tagger", 2, "1k"): "24.9 ± 1.8",
    ("convnet", 1, "50k"): "3.9 ± 0.3", ("convnet", 1, "1k"): "52.4 ± 5.3",
    ("convnet", 2, "50k"): "12.6 ± 0.4", ("convnet", 2, "1k"): "79.1 ± 0.8",
}
TITLES = {"fc-mlp": "FC MLP", "fc-ladder": "FC Ladder", "tagger": "FC Tagger", "convnet": "ConvNet"}
ORDER = ("fc-mlp", "fc-ladder", "tagger", "convnet")
# every run of scripts/table2.sh: name -> (model, digits, labels); the order of the README's rows
RUNS = {
    "f1-fc-mlp-1k": ("fc-mlp", 1, "1k"), "f2-fc-mlp-1k": ("fc-mlp", 2, "1k"),
    "f1-fc-mlp": ("fc-mlp", 1, "50k"), "f2-fc-mlp": ("fc-mlp", 2, "50k"),
    "f2-fc-ladder-1k": ("fc-ladder", 2, "1k"), "f2-fc-ladder": ("fc-ladder", 2, "50k"),
    "f1-tagger-stage2-1k": ("tagger", 1, "1k"),
    "f1-convnet-1k": ("convnet", 1, "1k"), "f2-convnet-1k": ("convnet", 2, "1k"),
    "f1-fc-ladder-1k": ("fc-ladder", 1, "1k"), "f1-fc-ladder": ("fc-ladder", 1, "50k"),
    "f1-convnet": ("convnet", 1, "50k"), "f2-convnet": ("convnet", 2, "50k"),
    # Tagger's full protocol on a GPU (docs/baselines.md, "Tagger's rows"); not in table2.sh
    "f1-tagger-stage2": ("tagger", 1, "50k"), "f2-tagger-stage2-1k": ("tagger", 2, "1k"),
    "f2-tagger-stage2": ("tagger", 2, "50k"),
}
# what each run of scripts/table2.sh trains at most: (epochs, the preset timed for them in timings.json) per
# stage; the baselines' MAX of table2.sh's `one`, Tagger's shortened stages the defaults of
# TAGGER_STAGE1_EPOCHS and TAGGER_STAGE2_EPOCHS in epochs of the standard file, x TAGGER_N_TRAIN / 50 000
# (tests/test_table2_script.py reads table2.sh against it).
# One preset's time stands for both data sets: the Freq20-1MNIST and -2MNIST models have the same sizes.
PLANS = {
    "f1-fc-mlp-1k": ((300, "freq20-2mnist-fc-mlp-1k"),), "f2-fc-mlp-1k": ((300, "freq20-2mnist-fc-mlp-1k"),),
    "f1-fc-mlp": ((60, "freq20-2mnist-fc-mlp"),), "f2-fc-mlp": ((60, "freq20-2mnist-fc-mlp"),),
    "f1-fc-ladder-1k": ((10, "freq20-2mnist-fc-ladder-1k"),), "f2-fc-ladder-1k": ((10, "freq20-2mnist-fc-ladder-1k"),),
    "f1-fc-ladder": ((10, "freq20-2mnist-fc-ladder"),), "f2-fc-ladder": ((10, "freq20-2mnist-fc-ladder"),),
    "f1-convnet-1k": ((150, "freq20-2mnist-convnet-1k"),), "f2-convnet-1k": ((150, "freq20-2mnist-convnet-1k"),),
    "f1-convnet": ((12, "freq20-2mnist-convnet"),), "f2-convnet": ((12, "freq20-2mnist-convnet"),),
    "f1-tagger-stage2-1k": ((0.6, "freq20-1mnist-pretrain"), (0.4, "freq20-1mnist-continue")),
}
# Tagger's full protocol (docs/baselines.md, "Tagger's rows"): 150 stage-1 and 50 stage-2 epochs
FULL_TAGGER = ((150, "freq20-1mnist-pretrain"), (50, "freq20-1mnist-continue"))
# rows of the paper this machine does not attempt: Tagger's full protocol needs a GPU
NOT_RUN = {("tagger", 1, "50k"), ("tagger", 2, "50k"), ("tagger", 2, "1k")}


def read_metrics(run: str) -> list:
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def last(value):
    """A metrics value: the last iteration's of a per-iteration list."""
    return value[-1] if isinstance(value, list) else value


def flattened(rows: list, window: int, tol: float) -> bool:
    """The best validation class error of the last `window` epochs is not `tol` points below the best
    of the epochs before them."""
    errors = [last(r["valid_class_error"]) for r in rows if "valid_class_error" in r]
    if len(errors) <= window:
        return False
    return min(errors[-window:]) > min(errors[:-window]) - tol


def read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def run_facts(run: str) -> dict:
    """Epochs, times and validation error of a run directory."""
    rows = read_metrics(run)
    train_s = sum(r.get("train_time_s") or 0 for r in rows)
    valid_s = sum(r.get("valid_time_s") or 0 for r in rows)
    errors = [round(last(r["valid_class_error"]), 3) for r in rows if "valid_class_error" in r]
    facts = {"run_dir": os.path.abspath(run), "epochs": len(rows), "steps": rows[-1]["steps"] if rows else 0,
             "train_s": round(train_s, 1), "valid_s": round(valid_s, 1),
             "s_per_epoch": round((train_s + valid_s) / len(rows), 1) if rows else None,
             "valid_class_error_per_epoch": errors}
    commands = os.path.join(run, "commands.txt")
    if os.path.exists(commands):
        with open(commands, encoding="utf-8") as f:
            facts["commands"] = [line.strip() for line in f if line.strip()]
    stop = os.path.join(run, "stop.json")
    if os.path.exists(stop):
        facts["stopped_because"] = read_json(stop)
    for name in ("config.json", "run.json"):
        if os.path.exists(os.path.join(run, name)):
            facts[name.split(".")[0]] = read_json(os.path.join(run, name))
    return facts


TRAIN_ON = 3  # `flattened`'s exit status while the run should train on


def cmd_flattened(args) -> int:
    rows = read_metrics(args.run)
    n = len(rows)
    why = None
    if n >= args.max_epochs:
        why = f"reached the cap of {args.max_epochs} epochs"
    elif n >= args.min_epochs and flattened(rows, args.window, args.tol):
        why = (f"validation class error flattened: the best of the last {args.window} epochs is not {args.tol} "
               f"points below the best before them (epoch {n})")
    if why is None:
        return TRAIN_ON
    write(os.path.join(args.run, "stop.json"), json.dumps(
        {"epochs": n, "why": why, "window": args.window, "tol": args.tol, "min_epochs": args.min_epochs,
         "max_epochs": args.max_epochs}, indent=2) + "\n")
    return 0


def cmd_result(args) -> int:
    model, digits, labels = RUNS[args.name]
    test = read_json(args.test)
    result = {"name": args.name, "model": model, "digits": digits, "labels": labels,
              "test_class_error": last(test["class_error"]), "test_class_cost": last(test["class_cost"]),
              "paper": PAPER[(model, digits, labels)], "test": test, "run": run_facts(args.run)}
    if args.stage1:
        result["stage1"] = run_facts(args.stage1)
    result.update(cpu=cpu_model(), cpu_capability=cpu_capability(), cpu_bf16_native=cpu_bf16_native(),
                  cores=os.cpu_count(), written=datetime.datetime.now().isoformat(timespec="seconds"),
                  load_avg=[round(v, 2) for v in os.getloadavg()], commit=os.environ.get("TABLE2_COMMIT"))
    os.makedirs(args.results, exist_ok=True)
    write(os.path.join(args.results, f"{args.name}.json"), json.dumps(result, indent=2) + "\n")
    print(f"{args.name}: test class error {result['test_class_error']:.2f}% (paper {result['paper']})")
    return 0


def hours(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds >= 36000:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def short(command: str) -> str:
    """A recorded command with the repository's folders of data files and configs written from its root."""
    return re.sub(r"\S*/(datasets|results/table2/configs)/", r"\1/", command)


def cpu_text(result: dict) -> str:
    """'model (torch's kernels: AVX512, native bf16)'; the model alone in result files written without them."""
    if "cpu_capability" not in result:
        return result["cpu"]
    bf16 = "native bf16" if result["cpu_bf16_native"] else "no native bf16"
    return f"{result['cpu']} (torch's kernels: {result['cpu_capability']}, {bf16})"


def stage_text(facts: dict) -> str:
    """'N ep of S steps, time' of one Tagger stage (the shortened stages train on a smaller file)."""
    return (f"{facts['epochs']} ep of {facts['steps'] // max(facts['epochs'], 1)} steps, "
            f"{hours(facts['train_s'] + facts['valid_s'])}")


def cell(result: dict) -> str:
    """The table cell of a finished run: error, epochs (and steps, Tagger's stages), time."""
    run, error = result["run"], f"**{result['test_class_error']:.1f}**"
    if "stage1" not in result:
        return f"{error} ({run['epochs']} ep, {hours(run['train_s'] + run['valid_s'])})"
    s1 = result["stage1"]
    shortened = "shortened CPU run: " if s1["epochs"] < 150 else ""
    return (f"{shortened}{error} (stage 2: {stage_text(run)}; stage 1: {stage_text(s1)}; "
            f"at T = {result['test']['iterations']})")


def read_timings(results: str) -> dict:
    """preset -> measured seconds per epoch (training + validation) of results/timings.json; {} without it."""
    path = os.path.join(results, "timings.json")
    if not os.path.exists(path):
        return {}
    return {row["preset"]: row["s_per_epoch"] for row in read_json(path).get("rows", [])}


def estimate(plan: tuple, timings: dict) -> str:
    """'N ep x S s/ep ~ T' (stages joined by ' + ') from the measured seconds per epoch; '' without them."""
    if any(preset not in timings for _, preset in plan):
        return ""
    parts = " + ".join(f"{epochs} ep x {timings[preset]:.0f} s" for epochs, preset in plan)
    return f"{parts} ~ {hours(sum(epochs * timings[preset] for epochs, preset in plan))}"


def progress(run_dir: str):
    """(epochs so far, the last validation error or None, the time of the last change) of a run
    table2.sh has started (its commands.txt), else None."""
    if not os.path.exists(os.path.join(run_dir, "commands.txt")):
        return None
    rows = read_metrics(run_dir)
    files = [os.path.join(run_dir, f) for f in ("metrics.jsonl", "checkpoint.pt", "commands.txt")]
    stamp = max(os.path.getmtime(f) for f in files if os.path.exists(f))
    when = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
    error = last(rows[-1]["valid_class_error"]) if rows and "valid_class_error" in rows[-1] else None
    return len(rows), error, when


def unfinished(key: tuple, runs_dir, timings: dict):
    """(table cell, line of 'Rows without a result') of a row without a result file."""
    model, digits, labels = key
    if key in NOT_RUN:
        cost = estimate(FULL_TAGGER, timings)
        total = f" (~{cost.rsplit('~ ', 1)[1]} here)" if cost else ""
        cost = f": {cost} on one thread of this CPU" if cost else ""
        return (f"not run: needs a GPU{total}",
                f"not run: Tagger's full protocol, 150 stage-1 + 50 stage-2 epochs, needs a GPU{cost} (stage times "
                "of Freq20-1MNIST); the recipe is in docs/baselines.md")
    name = {v: k for k, v in RUNS.items()}[key]
    cost = estimate(PLANS[name], timings)
    plan = f"at most {cost}" if cost else "queued"
    stages = [name] if model != "tagger" else ["f1-tagger-stage1", name]
    for stage in reversed(stages):
        state = progress(os.path.join(runs_dir, stage)) if runs_dir else None
        if state is None:
            continue
        epochs, error, when = state
        what = "stage 1, " if stage != name else ("stage 2, " if model == "tagger" else "")
        error = f" (valid error {error:.1f} %)" if error is not None else ""
        so_far = f"{what}{epochs} epoch{'' if epochs == 1 else 's'} so far{error}"
        return (f"in progress: {so_far}",
                f"in progress: {so_far}, last written {when:%Y-%m-%d %H:%M} UTC; "
                f"plan: {plan} (`scripts/table2.sh {name}` resumes it)")
    shortened = " as a shortened CPU run" if model == "tagger" else ""
    return (f"not run yet: queued{shortened}" + (f" ({cost})" if cost else ""),
            f"not run yet: queued in scripts/table2.sh{shortened} (`scripts/table2.sh {name}` runs it); {plan}")


def cmd_collect(args) -> int:
    results = {}
    for path in sorted(glob.glob(os.path.join(args.results, "*.json"))):
        r = read_json(path)
        if r.get("name") in RUNS:  # a run's result (timings.json is not)
            results[(r["model"], r["digits"], r["labels"])] = r
    lines = ["# Table 2 on this machine: test error % on Freq20-MNIST (TextureMNIST), beside the paper", "",
             "Written by `python scripts/table2.py collect` from the JSON files in this folder, one per run (`scripts/"
             "table2.sh` trains, evaluates and collects). Each cell: **our test class error %** (epochs, wall time "
             "of training and validation) | the paper's mean ± sd over 5 runs. One run (seed 1) per cell here: each "
             "further seed would take the row's time again on this CPU. "
             "Error: SPEC 6's rule (top-1; for two digits the top two against both labels), "
             "`tagger_torch.costs.classification_error` for every model. Chance: 90 % (1 digit), 80 % (2 digits).", ""]
    cpus = sorted({r["cpu"] for r in results.values()})
    lines += [f"CPU: {', '.join(cpus) or cpu_model()}; one thread per run (`OMP_NUM_THREADS=1`, `nice -n 19`), fp32, "
              "the 2 cores shared throughout with two other long training runs and other work, so every time "
              "here is inflated (docs/baselines.md has the measured seconds per epoch). A row without a result "
              "says why: in progress, queued with its cost (at most its epoch cap x the seconds per epoch of "
              "timings.json, `scripts/time_table2.py`; on this machine both cores went to Table 1's two training "
              "runs first), or not run (Tagger's full protocol needs a GPU). "
              "The FC Ladder (against Rasmus et al.), the ConvNet and Tagger's classification path are checked "
              "on plain MNIST in docs/baselines.md (\"The Ladder and the ConvNet checked on plain MNIST\", "
              "\"Tagger's rows\").", ""]
    lines += ["| model | TextureMNIST1, 50k labels | TextureMNIST1, 1k labels | TextureMNIST2, 50k labels | "
              "TextureMNIST2, 1k labels |", "|---|---|---|---|---|"]
    timings = read_timings(args.results)
    missing = []
    for model in ORDER:
        cells = []
        for digits, labels in ((1, "50k"), (1, "1k"), (2, "50k"), (2, "1k")):
            key = (model, digits, labels)
            if key in results:
                ours = cell(results[key])
            else:
                ours, why = unfinished(key, args.runs, timings)
                missing.append(f"* {TITLES[model]}, TextureMNIST{digits}, {labels} labels "
                               f"(paper {PAPER[key]}): {why}.")
            cells.append(f"{ours} \\| paper {PAPER[key]}")
        lines.append(f"| {TITLES[model]} | " + " | ".join(cells) + " |")
    if missing:
        lines += ["", "## Rows without a result", ""] + missing
    lines += ["", "## The runs", ""]
    for key, r in sorted(results.items(), key=lambda kv: list(RUNS).index(kv[1]["name"])):
        run = r["run"]
        lines.append(f"### {r['name']}: {r['test_class_error']:.2f} % (paper {r['paper']})")
        lines.append("")
        stop = run.get("stopped_because", {}).get("why", "a fixed number, scripts/table2.sh")
        lines.append(f"* {run['epochs']} epochs ({stop}); training {hours(run['train_s'])} + validation "
                     f"{hours(run['valid_s'])} ({run['s_per_epoch']} s per epoch); evaluation "
                     f"{r['test']['seconds']:.0f} s; finished {r['written']} on {cpu_text(r)}; load average then "
                     f"{' '.join(map(str, r['load_avg']))}.")
        errors = run["valid_class_error_per_epoch"]
        if errors:
            lines.append(f"* validation class error per epoch: {', '.join(f'{e:.1f}' for e in errors)}.")
        if "stage1" in r:
            s1 = r["stage1"]
            lines.append(f"* stage 1: {stage_text(s1)}; commands: "
                         + "; ".join(f"`{short(c)}`" for c in s1.get("commands", [])))
        lines.append("* commands: " + "; ".join(f"`{short(c)}`" for c in run.get("commands", [])))
        lines.append("")
    write(os.path.join(args.results, "README.md"), "\n".join(lines).rstrip() + "\n")
    print(f"wrote {os.path.join(args.results, 'README.md')} ({len(results)} runs)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("epochs")
    p.add_argument("run")
    p = sub.add_parser("flattened")
    p.add_argument("run")
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--min-epochs", type=int, required=True)
    p.add_argument("--max-epochs", type=int, required=True)
    p.add_argument("--tol", type=float, default=0.3)
    p = sub.add_parser("result")
    p.add_argument("name", choices=sorted(RUNS))
    p.add_argument("run")
    p.add_argument("test")
    p.add_argument("--results", required=True)
    p.add_argument("--stage1")
    p = sub.add_parser("collect")
    p.add_argument("--results", required=True)
    p.add_argument("--runs")
    args = parser.parse_args(argv)
    if args.verb == "epochs":
        print(len(read_metrics(args.run)))
        return 0
    return {"flattened": cmd_flattened, "result": cmd_result, "collect": cmd_collect}[args.verb](args)


if __name__ == "__main__":
    sys.exit(main())

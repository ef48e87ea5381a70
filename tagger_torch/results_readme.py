"""results/README.md from the published models (`tagger_torch.publish`): Table 1 beside the paper's.

Everything is read off the files of results/NAME/ (publish.json and the evaluation JSONs), so the
README can be rewritten at any time and says the same thing for the same files. The same Table 1a
goes into the project README between the markers `<!-- table1:begin -->` and `<!-- table1:end -->`
(`update_readme_section`). The paper's numbers are those of its Table 1 (NIPS 2016): 1a per iteration
on the test split, trained with K = 4, T = 3; 1b the AMI at T = 5 with its spread over runs.
"""
from __future__ import annotations

import os
from typing import Dict, List

from .errors import TaggerError
from .files import read_json, write_text
from .reproduce.plan import PAPER_TABLE1, SHIPPED

# norm -> (model name in the paper, its Table 1a rows at T = 1..5)
PAPER_1A = {
    "batch": ("Tagger (BatchNorm)", {"denoising_cost": [".094", ".068", ".063", ".063", ".063"],
                                     "ami": [".58", ".73", ".77", ".79", ".79"]}),
    "layer": ("Tagger* (LayerNorm)", {"denoising_cost": [".100", ".069", ".057", ".054", ".054"],
                                      "ami": [".70", ".90", ".95", ".96", ".97"]}),
}
PAPER_1B = {"RC": "0.61 ± 0.005", **PAPER_TABLE1}
# norm -> the shipped model of Table 1 (the plan's runs whose cell is in "table1")
TABLE1 = {run.cell.row: run for run in SHIPPED.values() if run.cell is not None and run.cell.table == "table1"}
ROWS = (("denoising cost", "denoising_cost", "{:.4f}"), ("AMI", "ami", "{:.3f}"), ("ARI", "ari", "{:.3f}"),
        ("class error %", "class_error", "{:.2f}"))
TABLE1_NAMES = {run.name for run in TABLE1.values()}
BEGIN, END = "<!-- table1:begin -->", "<!-- table1:end -->"


def collect(results: str) -> Dict[str, dict]:
    """name -> {"publish": publish.json, "test": test.json, ..., "fp16_change": ...} for every
    registered model published under `results` (paper order: BatchNorm first)."""
    found = {}
    for name in [run.name for norm, run in sorted(TABLE1.items())] + [n for n in SHIPPED if n not in TABLE1_NAMES]:
        folder = os.path.join(results, name)
        publish = read_json(os.path.join(folder, "publish.json"))
        if publish is None:
            continue
        entry = {"publish": publish, "fp16_change": read_json(os.path.join(folder, "fp16_change.json"))}
        entry.update({case.key: read_json(os.path.join(folder, f"{case.key}.json")) for case in SHIPPED[name].scorings})
        found[name] = entry
    return found


def _cells(values: List[float], fmt: str) -> str:
    return " | ".join(fmt.format(v) for v in values)


def table_1a(published: Dict[str, dict]) -> str:
    """Table 1a: the paper's rows and this project's, for both models (missing ones say so)."""
    lines = ["| test split, trained K = 4, T = 3 | T=1 | 2 | 3 | 4 | 5 |", "|---|---|---|---|---|---|"]
    for norm, run in sorted(TABLE1.items()):
        name = run.name
        title, paper = PAPER_1A[norm]
        test = published.get(name, {}).get("test")
        for label, key, fmt in ROWS:
            if key in paper:
                lines.append(f"| {title}, paper: {label} | " + " | ".join(paper[key]) + " |")
            if test is not None and key in test:
                lines.append(f"| {title}, here (`{name}`): {label} | {_cells(test[key], fmt)} |")
        if test is None:
            lines.append(f"| {title}, here (`{name}`) | not published yet |  |  |  |  |")
    return "\n".join(lines)


def _unfinished(published: Dict[str, dict]) -> List[str]:
    return [f"`{name}` has finished {e['publish']['training']['epochs']} of {e['publish']['training']['num_epochs']} "
            "epochs" for name, e in published.items() if not e["publish"]["training"]["finished"]]


def update_readme_section(readme: str, published: Dict[str, dict]) -> None:
    """Replace the text between BEGIN and END in `readme` by Table 1a (TaggerError without them)."""
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise TaggerError(f"{readme} has no section {BEGIN} ... {END} to fill")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    warning = "".join(f"\n**Not final:** {line} (a dry run).\n" for line in _unfinished(published))
    body = f"{warning}\n{table_1a(published)}\n\n"
    write_text(readme, f"{head}{BEGIN}\n{body}{END}{tail}")


def _padded(values: List[float], fmt: str, width: int = 5) -> str:
    return " | ".join([fmt.format(v) for v in values] + [""] * (width - len(values)))


def _fp16_change(change: dict, file_bytes: int) -> List[str]:
    """fp16_change.json beside the run's float32 weights: the differences per iteration."""
    out = ["", "| float16 storage (`fp16_change.json`), fp16 - fp32 | T=1 | 2 | 3 | 4 | 5 |", "|---|---|---|---|---|---|"]
    out += [f"| {label} | {_cells(change['fp16_minus_fp32'][key], '{:+.1e}')} |" for label, key, _ in ROWS
            if key in change["fp16_minus_fp32"]]
    w = change["weights"]
    return out + ["", f"The {w['n_parameters']:,} weights stored as float16 change by at most {w['max_abs_change']:.1e} "
                      f"(relative {w['max_rel_change_normal']:.1e} in float16's normal range); {w['n_became_zero']} "
                      f"became 0 and {w['n_subnormal']} are subnormal. File: {file_bytes / 1e6:.1f} MB."]


def _fp16_checks_without_fp32(change: dict, file_bytes: int) -> List[str]:
    """fp16_change.json when the float32 weights are gone (publish._publish_fp16_change_without_fp32)."""
    v, r = change["final_validation"], change["rounding_draws"]
    n = len(r["draws"])
    out = ["", "| float16 storage (`fp16_change.json`), no float32 weights | T=1 | 2 | 3 | 4 | 5 |",
           "|---|---|---|---|---|---|",
           f"| validation denoising cost after epoch {v['epoch']}: float16 recomputed - float32 logged | "
           f"{_padded(v['fp16_minus_fp32'], '{:+.1e}')} |"]
    for label, key, _ in (row for row in ROWS if row[1] in r["fp16"]):
        largest = [max(abs(c[key][i]) for c in r["fp16_minus_draw"]) for i in range(len(r["fp16"][key]))]
        out.append(f"| test {label}: largest \\|float16 - float32 draw\\| of {n} | {_cells(largest, '{:.1e}')} |")
    return out + ["", f"The run's float32 weights are gone. The float16 weights recompute the validation cost that "
                      f"training logged with the float32 weights after epoch {v['epoch']} (same data, batches and "
                      f"noise), and the test split is scored from {n} float32 weight sets drawn uniformly within each "
                      f"float16 weight's rounding interval, each a float32 original the float16 file is consistent "
                      f"with. {change['weights']['n_parameters']:,} weights; file: {file_bytes / 1e6:.1f} MB."]


def _model_sections(name: str, e: dict) -> List[str]:
    p, t = e["publish"], e["publish"]["training"]
    cases = SHIPPED[name].scorings
    first, change = e[cases[0].key], e["fp16_change"]
    out = [f"### `{name}`: {p['description']}", ""]
    out += ["| case (results/" + name + "/...) | K | T=1 | 2 | 3 | 4 | 5 |", "|---|---|---|---|---|---|---|"]
    for case in cases:
        r = e.get(case.key)
        for label, key, fmt in ROWS[1:]:
            if r is not None and key in r and key != "ari":
                out.append(f"| {r['description']} (`{case.key}.json`), {label} | {r['groups']} | {_cells(r[key], fmt)} |")
    if change is not None and "fp16_minus_fp32" in change:
        out += _fp16_change(change, p["params"]["bytes"])
    elif change is not None:
        out += _fp16_checks_without_fp32(change, p["params"]["bytes"])
    hours = (t["train_time_s"] + t["valid_time_s"]) / 3600
    where = "".join(f", {key} {t[key]}" for key in ("device", "started") if t.get(key))
    out += ["", f"Training: {t['epochs']} of {t['num_epochs']} epochs, {hours:.1f} h ({t['train_time_s'] / 3600:.1f} h "
                f"training, {t['valid_time_s'] / 3600:.1f} h validation; median {t['samples_per_s_median']} images/s), "
                f"{t['precision']}{', compiled' if t['compiled'] else ''}{where}, seed {t['seed']}."
                + (f" {p['note']}" if p.get("note") else "")]
    if any(case.split == "single" for case in cases):
        out += ["(`single`: one true group per image, so an image's AMI is 1 when its shape lies in one group and 0 "
                "otherwise, scikit-learn's rule for a single true cluster; the mean is the share of such images.)"]
    out += ["", f"Scored on {first['cpu']} ({first.get('cpu_capability')}, {first['threads']} thread(s), load average "
                f"{first['load_average']}), torch {first['torch']}, code {first['code']}; the {first['split']} split "
                f"took {first['seconds']:.0f} s.", ""]
    panels = "; ".join(f"{case.description[:2]} example 0 of the {case.description[3:]}" for case in cases if case.panel)
    out += [f"![{name}: Figure 4]({name}/figure4.png)", "",
            f"`{name}/figure4.png`: rows 1-7 the {first['split']} examples 0-6 (K = {first['trained_groups']})"
            + (f"; {panels}" if panels else "") + f". Clean input, T = {first['iterations']}; columns: the input, the "
            "reconstruction coloured by group after each iteration (with the example's AMI), the final masks, the true "
            f"grouping. Training curves: `{name}/curves.png`.", ""]
    out += ["Commands:", "", "```sh", f"{p['command']}   # all of results/{name}/"]
    out += [f"{e[case.key]['command']}   # {case.key}.json" for case in cases if e.get(case.key) is not None]
    out += ["```", ""]
    return out


def results_readme(published: Dict[str, dict]) -> str:
    """The text of results/README.md."""
    lines = ["# Table 1 on Shapes, reproduced", "",
             "Written by `tagger-torch reproduce publish NAME` from the finished training runs (rerun it; do not edit by "
             "hand). "
             "Each folder is a shipped model: `config.json`, `params-fp16.npz` (the final parameters stored as "
             "float16; a model past 45 MB adds `params-fp16-2.npz`, read with it), `metrics.jsonl`, `curves.png`, "
             "the evaluations (`test.json`, `groups2.json`, `shapes2.json`, "
             "`shapes4.json`, `single.json`, `fp16_change.json`), `figure4.png` and `publish.json`. Every score is "
             "computed from the float16 weights (except the float32 ones of `fp16_change.json`), on the CPU with "
             "one thread, noise seed 0; `make test-slow` checks that the weights reproduce `test.json`.", "",
             "```sh", "make data   # datasets/shapes50k_20x20.h5",
             "tagger-torch evaluate --pretrained shapes-ln --hdf5 datasets/shapes50k_20x20.h5   # or shapes-bn", "```",
             ""]
    lines += [f"**Not final:** {line} (a dry run: not to be committed)." for line in _unfinished(published)]
    if not published:
        lines += [f"No model is published yet ({', '.join(SHIPPED)}: `tagger-torch reproduce run NAME`).", ""]
        return "\n".join(lines) + "\n"
    lines += ["", "## Table 1a", "",
              "The paper: its Table 1 (several runs). Here: one run per model (seed 10), noise seed 0, the test split's "
              "10 000 images.", "", table_1a(published), "",
              "## Table 1b: AMI at T = 5", "", "| model | paper | here |", "|---|---|---|",
              f"| RC | {PAPER_1B['RC']} | not run here |"]
    for norm, run in sorted(TABLE1.items()):
        name = run.name
        test = published.get(name, {}).get("test")
        here = f"{test['ami'][-1]:.3f} (`{name}`, one seed)" if test else "not published yet"
        lines.append(f"| {PAPER_1A[norm][0]} | {PAPER_1B[norm]} | {here} |")
    lines += ["", "## Each model: generalisation (the paper's Figure 4a cases), float16 storage, training", ""]
    for name, entry in published.items():
        lines += _model_sections(name, entry)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_results_readme(results: str) -> str:
    """Write results/README.md from what is published under `results`; returns its path."""
    path = os.path.join(results, "README.md")
    os.makedirs(results, exist_ok=True)
    write_text(path, results_readme(collect(results)))
    return path

"""Publishing a finished Shapes run as `results/NAME/`: the shipped model of `--pretrained NAME`.

    results/NAME/config.json       the run's config
    results/NAME/params-fp16.npz   its final parameters stored as float16 (release names); loadable by
                                   evaluate --params/--config, --run, --pretrained, train --load-from
                                   and the NumPy reference (loading casts to the model's dtype)
    results/NAME/metrics.jsonl     the run's per-epoch metrics; curves.png their plot
    results/NAME/test.json         `evaluate` of the test split at T = 5 (Table 1a)
    results/NAME/groups2.json      A: the test split scored with K = 2 groups   (Figure 4a's cases:
    results/NAME/shapes2.json      B: the 2-shape test set                       the model was trained
    results/NAME/shapes4.json      C: the 4-shape test set                       on 3 shapes, K = 4)
    results/NAME/single.json       the `single` split (one shape per image)
    results/NAME/fp16_change.json  the test split from the run's float32 params.npz, same seed, and
                                   the per-iteration differences float16 - float32 (when params.npz
                                   is gone: the checks of `_publish_fp16_change_without_fp32`)
    results/NAME/figure4.png       7 test examples (indices 0-6) and the first example of A, B, C
    results/NAME/publish.json      the run's facts (epochs, time, precision, seed), data fingerprints

Every score except fp16_change.json's float32 one is computed from the shipped params-fp16.npz, on
the CPU in fp32 with `threads` threads (1: the same numbers on every run on one machine), with the
noise drawn from `seed`; each JSON records those settings, the machine and the equivalent command
line. Publishing again keeps every file whose inputs (parameters, data, settings) are unchanged,
so a later session can rerun it with only the run directory present; `force` redoes everything.
With `run=None` publishing completes results/NAME from its own config.json, metrics.jsonl and
params-fp16.npz, for a run whose directory is gone.
The README of the results folder is `results_readme.write_results_readme`.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from typing import Callable, Dict, Mapping, NamedTuple, Optional

import numpy as np
import torch

from .config import load_config
from .errors import TaggerError
from .evaluate import evaluate_model, format_table
from .files import read_npz, write_text
from .float16 import export_float16, rounding_preimage
from .models import Split, build_model
from .precision import cpu_model
from .pretrained import PRETRAINED, known_names
from .training.rundir import CONFIG, CURVES, METRICS, PARAMS, PARAMS_FP16, RUN, read_metrics
from .training.streams import load_examples
from .training.trainer import validation_generator
from .visualize import Panel, draw_example_rows, plot_curves

PUBLISH, FP16_CHANGE, FIGURE = "publish.json", "fp16_change.json", "figure4.png"
SCORES = ("denoising_cost", "ami", "ari")
ROUNDING_DRAWS = 2  # float32 weight sets drawn within the float16 rounding intervals (float32 weights gone)


class DataFiles(NamedTuple):
    """The Shapes files of the cases (make them: docs/data.md; `make-dataset shapes --n-shapes 2|4`)."""

    shapes: str = "datasets/shapes50k_20x20.h5"
    shapes2: str = "datasets/shapes50k_20x20_2shapes.h5"
    shapes4: str = "datasets/shapes50k_20x20_4shapes.h5"


class Case(NamedTuple):
    data: str  # a field of DataFiles
    split: str
    groups: Optional[int]  # K at evaluation; None: the trained K
    description: str


CASES: Dict[str, Case] = {  # results/NAME/<key>.json
    "test": Case("shapes", "test", None, "test split (Table 1a)"),
    "groups2": Case("shapes", "test", 2, "A: test split scored with K = 2 groups"),
    "shapes2": Case("shapes2", "test", None, "B: test split of the 2-shape data"),
    "shapes4": Case("shapes4", "test", None, "C: test split of the 4-shape data"),
    "single": Case("shapes", "single", None, "single split (one shape per image)"),
}
FIGURE_TEST_EXAMPLES = 7  # test indices 0..6; then the first example of cases A, B, C


def params_digest(params: Mapping[str, np.ndarray]) -> str:
    """sha256 of the parameters' names, dtypes, shapes and values (not of the file's bytes)."""
    h = hashlib.sha256()
    for name in sorted(params):
        a = np.ascontiguousarray(params[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def machine_facts(threads: int) -> dict:
    """Where an evaluation ran: CPU model, threads, load, torch and this code's git commit."""
    cpu = cpu_model()
    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        code = subprocess.run(["git", "-C", source, "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        code = None
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return dict(cpu=cpu, cpu_capability=torch.backends.cpu.get_cpu_capability(), cpu_count=os.cpu_count(),
                threads=threads, load_average=load, torch=torch.__version__, python=platform.python_version(), code=code)


def evaluate_line(name: str, case: Case, hdf5: str, iterations: int, seed: int) -> str:
    """The `tagger-torch evaluate` line that computes what `publish_run` computes for `case`."""
    groups = f" --groups {case.groups}" if case.groups else ""
    return (f"OMP_NUM_THREADS=1 tagger-torch evaluate --pretrained {name} --hdf5 {hdf5} --split {case.split} "
            f"--iterations {iterations}{groups} --seed {seed} --device cpu")


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _kept(path: str, expected: dict, force: bool) -> Optional[dict]:
    """The JSON at `path` when it was computed with exactly `expected` (and not `force`)."""
    old = None if force else _read_json(path)
    return old if old is not None and all(old.get(k) == v for k, v in expected.items()) else None


def _write_json(path: str, value: dict) -> None:
    write_text(path, json.dumps(value, indent=2) + "\n")


def _load(config, params: Mapping[str, np.ndarray]):
    return build_model(config, params=params).to(torch.device("cpu")).eval()


def run_facts(run: str, config) -> dict:
    """publish.json's training facts, read off the run directory (or a results folder: then those
    of run.json that the metrics lines repeat, and None for the others)."""
    rows = read_metrics(os.path.join(run, METRICS))
    started = _read_json(os.path.join(run, RUN))
    if started is None and rows:  # a results folder: what the metrics lines repeat of run.json
        started = dict(precision=rows[-1].get("precision"), compile=rows[-1].get("compiled"),
                       world_size=rows[-1].get("world_size"))
    started = started or {}
    epochs = rows[-1]["epoch"] if rows else 0
    return dict(epochs=epochs, num_epochs=config.num_epochs, finished=epochs >= config.num_epochs,
                train_time_s=round(sum(r.get("train_time_s", 0.0) for r in rows), 1),
                valid_time_s=round(sum(r.get("valid_time_s", 0.0) for r in rows), 1),
                samples_per_s_median=float(np.median([r["samples_per_s"] for r in rows])) if rows else None,
                last_valid_denoising_cost=rows[-1].get("valid_denoising_cost") if rows else None,
                seed=config.seed, precision=started.get("precision"), compiled=started.get("compile"),
                device=started.get("device"), world_size=started.get("world_size"), started=started.get("started"),
                data=started.get("hdf5"))


def publish_run(run: Optional[str], name: str, results: str, data: DataFiles = DataFiles(), *, seed: int = 0,
                iterations: int = 5, threads: int = 1, note: Optional[str] = None, allow_unfinished: bool = False,
                force: bool = False, progress: bool = False, echo: Callable[[str], None] = print) -> str:
    """Write results/NAME/ (see the module docstring) from the run directory `run` (None: complete
    results/NAME from its own files); returns the folder."""
    if name not in PRETRAINED:
        raise TaggerError(f"unknown pretrained model '{name}' (known: {known_names()})")
    out = os.path.join(results, PRETRAINED[name].folder)
    source, needed = (run, (CONFIG, PARAMS)) if run is not None else (out, (CONFIG, METRICS, PARAMS_FP16))
    for path in (os.path.join(source, file) for file in needed):
        if not os.path.isfile(path):
            raise TaggerError(f"{path} is missing: {source} is not a finished run directory"
                              if run is not None else f"{path} is missing: there is no published {name} to complete")
    config = load_config(os.path.join(source, CONFIG))
    if config.norm != PRETRAINED[name].norm:
        raise TaggerError(f"{name} is the {PRETRAINED[name].norm}-norm model, but {source} trained norm={config.norm}")
    facts = run_facts(source, config)
    if not facts["finished"] and not allow_unfinished:
        raise TaggerError(f"{source} has finished {facts['epochs']} of {facts['num_epochs']} epochs; publish it when "
                          "it is done (or pass --allow-unfinished for a dry run)")
    missing = [f"{field}={path}" for field, path in data._asdict().items() if not os.path.isfile(path)]
    if missing:
        raise TaggerError(f"data file(s) missing: {', '.join(missing)} (make them with `tagger-torch make-dataset "
                          "shapes [--n-shapes 2|4] --out PATH`, docs/data.md)")
    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, CONFIG), config.to_json() + "\n")
    metrics, copied = os.path.join(out, METRICS), False
    if run is not None:
        exported = export_float16(os.path.join(run, PARAMS), os.path.join(out, PARAMS_FP16))
        echo(f"{PARAMS_FP16}: {'written' if exported['written'] else 'unchanged'} "
             f"({os.path.getsize(os.path.join(out, PARAMS_FP16)) / 1e6:.1f} MB)")
        copied = not os.path.isfile(metrics) or file_sha256(metrics) != file_sha256(os.path.join(run, METRICS))
        if copied:
            shutil.copyfile(os.path.join(run, METRICS), metrics)
    if copied or not os.path.isfile(os.path.join(out, CURVES)):
        plot_curves(read_metrics(metrics), os.path.join(out, CURVES))

    fp16 = read_npz(os.path.join(out, PARAMS_FP16), "parameter")
    if run is None:
        exported = dict(n_parameters=sum(int(np.size(v)) for v in fp16.values()))
    digest = params_digest(fp16)
    data_sha = {field: file_sha256(path) for field, path in data._asdict().items()}
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = _load(config, fp16)
        scores = {}
        for key, case in CASES.items():
            hdf5 = getattr(data, case.data)
            expected = dict(params_digest=digest, data_sha256=data_sha[case.data], split=case.split,
                            iterations=iterations, seed=seed, requested_groups=case.groups)
            path = os.path.join(out, f"{key}.json")
            scores[key] = _kept(path, expected, force)
            if scores[key] is not None:
                echo(f"{key}.json: unchanged ({case.description})")
                continue
            echo(f"{key}.json: {case.description}, {hdf5} ...")
            result = evaluate_model(model, hdf5, case.split, seed=seed, progress=progress, precision="fp32",
                                    n_groups=case.groups, n_iterations=iterations)
            scores[key] = {"case": key, "description": case.description, **result, **expected,
                           "params_file": PARAMS_FP16, "command": evaluate_line(name, case, hdf5, iterations, seed),
                           **machine_facts(threads)}
            _write_json(path, scores[key])
            echo(f"  AMI at T={iterations}: {scores[key]['ami'][-1]:.3f} ({result['seconds']:.0f} s)")
        if run is not None:
            _publish_fp16_change(run, out, config, scores["test"], exported, digest, data, data_sha, force, progress,
                                 echo)
        else:
            _publish_fp16_change_without_fp32(out, config, scores["test"], fp16, exported, digest, data, data_sha,
                                              force, progress, echo)
        if force or not os.path.isfile(os.path.join(out, FIGURE)) or \
                (_read_json(os.path.join(out, PUBLISH)) or {}).get("params_digest") != digest:
            panels = [Panel(f"test #{i}", data.shapes, "test", i) for i in range(FIGURE_TEST_EXAMPLES)]
            panels += [Panel("A: K=2\ntest #0", data.shapes, "test", 0, 2),
                       Panel("B: 2 shapes\ntest #0", data.shapes2, "test", 0),
                       Panel("C: 4 shapes\ntest #0", data.shapes4, "test", 0)]
            draw_example_rows(model, panels, os.path.join(out, FIGURE),
                              f"{name}: 7 test examples; A: K=2 groups, B: 2-shape and C: 4-shape test data "
                              f"(trained on 3 shapes with K={config.n_groups}); clean input, T={iterations}",
                              n_iterations=iterations, seed=seed)
            echo(f"{FIGURE}: written")
    finally:
        torch.set_num_threads(previous_threads)
    if note is None:  # a later publish without --note keeps the first one's
        note = (_read_json(os.path.join(out, PUBLISH)) or {}).get("note")
    _write_json(os.path.join(out, PUBLISH), dict(
        name=name, description=PRETRAINED[name].description, run=run and os.path.abspath(run), training=facts,
        note=note,
        params=dict(file=PARAMS_FP16, bytes=os.path.getsize(os.path.join(out, PARAMS_FP16)), params_digest=digest,
                    **{k: v for k, v in exported.items() if k != "written"}),
        data={field: dict(path=path, sha256=data_sha[field]) for field, path in data._asdict().items()},
        params_digest=digest, evaluation=dict(seed=seed, iterations=iterations, threads=threads),
        command=publish_command(run, name, results, data, seed, iterations, threads)))
    echo(f"{name}, test split:\n{format_table(scores['test'])}")
    return out


def _score_like_test(config, params: Mapping[str, np.ndarray], data: DataFiles, test: dict, progress: bool) -> dict:
    """The test split scored from `params` with test.json's settings: SCORES and `seconds`."""
    result = evaluate_model(_load(config, params), data.shapes, "test", seed=test["seed"], progress=progress,
                            precision="fp32", n_iterations=test["iterations"])
    return {key: result[key] for key in SCORES + ("seconds",)}


def _fp16_minus(test: dict, other: dict) -> dict:
    """test.json's float16 scores minus `other`'s, per score and iteration."""
    return {key: [a - b for a, b in zip(test[key], other[key])] for key in SCORES}


def _publish_fp16_change(run, out, config, test, exported, digest, data, data_sha, force, progress, echo) -> None:
    """fp16_change.json: the test split scored from the run's float32 parameters with test.json's
    settings, beside test.json's float16 scores, and their differences per iteration."""
    fp32 = read_npz(os.path.join(run, PARAMS), "parameter")
    expected = dict(params_digest=digest, fp32_params_digest=params_digest(fp32), data_sha256=data_sha["shapes"],
                    split="test", iterations=test["iterations"], seed=test["seed"])
    path = os.path.join(out, FP16_CHANGE)
    if _kept(path, expected, force) is not None:
        echo(f"{FP16_CHANGE}: unchanged")
        return
    echo(f"{FP16_CHANGE}: the test split from the float32 {os.path.join(run, PARAMS)} ...")
    result = _score_like_test(config, fp32, data, test, progress)
    weights = {k: v for k, v in exported.items() if k != "written"}
    change = _fp16_minus(test, result)
    _write_json(path, {**expected, "fp16": {k: test[k] for k in SCORES}, "fp32": {k: result[k] for k in SCORES},
                       "fp16_minus_fp32": change, "max_abs_change": {k: max(abs(x) for x in v) for k, v in change.items()},
                       "weights": weights, "seconds": result["seconds"], **machine_facts(torch.get_num_threads())})
    echo(f"  AMI change at T={test['iterations']} from float16 storage: {change['ami'][-1]:+.2e}")


def recompute_validation(config, params: Mapping[str, np.ndarray], hdf5: str, epoch: int) -> list:
    """The validation denoising cost per iteration that training logs after epoch `epoch`
    (metrics.jsonl's `valid_denoising_cost`), recomputed on the CPU from `params`: same split,
    batches and noise (`validation_generator`)."""
    cpu = torch.device("cpu")
    valid = load_examples(hdf5, "valid", config, cpu, config.uses_labels)
    with torch.no_grad():
        return _load(config, params).evaluate(Split(valid.x, valid.labels), batch_size=config.valid_batch_size,
                                              generator=validation_generator(config.seed, epoch, cpu))["denoising_cost"]


def _publish_fp16_change_without_fp32(out, config, test, fp16, exported, digest, data, data_sha, force, progress,
                                      echo) -> None:
    """fp16_change.json when the run's float32 parameters are gone, two checks that need none:
    `final_validation`: the last epoch's validation recomputed from the float16 weights with the
    trainer's own noise (`validation_generator`), beside the cost the float32 weights logged in
    metrics.jsonl; `rounding_draws`: the test split scored, with test.json's settings, from
    ROUNDING_DRAWS float32 weight sets drawn within the float16 weights' rounding intervals
    (`rounding_preimage`: each a float32 original the float16 file is consistent with), beside
    test.json's float16 scores."""
    last = read_metrics(os.path.join(out, METRICS))[-1]
    expected = dict(params_digest=digest, fp32_params_digest=None, data_sha256=data_sha["shapes"], split="test",
                    iterations=test["iterations"], seed=test["seed"], n_rounding_draws=ROUNDING_DRAWS)
    path = os.path.join(out, FP16_CHANGE)
    if _kept(path, expected, force) is not None:
        echo(f"{FP16_CHANGE}: unchanged")
        return
    echo(f"{FP16_CHANGE}: no float32 weights; epoch {last['epoch']}'s validation from the float16 ones ...")
    started = time.perf_counter()
    recomputed, logged = recompute_validation(config, fp16, data.shapes, last["epoch"]), last["valid_denoising_cost"]
    final_validation = dict(epoch=last["epoch"], fp32_logged=logged, fp16=recomputed,
                            fp16_minus_fp32=[a - b for a, b in zip(recomputed, logged)])
    draws = []
    for draw in range(ROUNDING_DRAWS):
        echo(f"  the test split from float32 weights drawn within the float16 rounding intervals ({draw + 1} of "
             f"{ROUNDING_DRAWS}) ...")
        rng = np.random.default_rng([test["seed"], draw])
        scores = _score_like_test(config, {k: rounding_preimage(fp16[k], rng) for k in sorted(fp16)}, data, test,
                                  progress)
        draws.append({key: scores[key] for key in SCORES})
    change = [_fp16_minus(test, d) for d in draws]
    rounding = dict(fp16={key: test[key] for key in SCORES}, draws=draws, fp16_minus_draw=change,
                    max_abs_change={key: max(abs(x) for c in change for x in c[key]) for key in SCORES})
    _write_json(path, {**expected, "fp32_params": "gone: fp16_change.json holds the checks that need none",
                       "final_validation": final_validation, "rounding_draws": rounding,
                       "weights": exported,
                       "seconds": round(time.perf_counter() - started, 1), **machine_facts(torch.get_num_threads())})
    echo(f"  epoch {last['epoch']} validation cost change from float16 storage (T=1..): "
         + " ".join(f"{x:+.1e}" for x in final_validation["fp16_minus_fp32"])
         + f"; AMI change at T={test['iterations']} to float32 draws: "
         + " ".join(f"{c['ami'][-1]:+.1e}" for c in change))


def publish_command(run: Optional[str], name: str, results: str, data: DataFiles, seed: int, iterations: int,
                    threads: int) -> str:
    """The command line of `scripts/publish_shapes.py` that publishes `run` as NAME."""
    flags = "".join(f" --{field} {path}" for field, path in data._asdict().items() if path != getattr(DataFiles(), field))
    flags += f" --results {results}" if os.path.normpath(results) != "results" else ""
    flags += f" --seed {seed}" if seed != 0 else ""
    flags += f" --iterations {iterations}" if iterations != 5 else ""
    flags += f" --threads {threads}" if threads != 1 else ""
    target = f"{run} {name}" if run is not None else f"--complete {name}"
    return f".venv/bin/python scripts/publish_shapes.py {target}{flags}"

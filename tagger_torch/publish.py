"""Publishing a finished run of the plan as `results/NAME/`: the shipped model of `--pretrained NAME`.

    results/NAME/config.json       the run's config
    results/NAME/params-fp16.npz   its final parameters stored as float16 (release names); loadable by
                                   evaluate --params/--config, --run, --pretrained, train --load-from
                                   and the NumPy reference (loading casts to the model's dtype)
    results/NAME/metrics.jsonl     the run's per-epoch metrics; curves.png their plot
    results/NAME/<case>.json       `evaluate` of each of the plan's scorings (`PlannedRun.scorings`):
                                   Shapes: test.json (Table 1a) and the Figure 4a cases groups2.json
                                   (K = 2), shapes2.json, shapes4.json (2 and 4 shapes) and single.json
    results/NAME/fp16_change.json  the first scoring again from the run's float32 params.npz, same seed,
                                   and the per-iteration differences float16 - float32 (when params.npz
                                   is gone: the checks of `_publish_fp16_change_without_fp32`)
    results/NAME/figure4.png       7 examples of the first scoring's split, then the first example of
                                   each scoring with a `panel` label (Shapes: the cases A, B, C)
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
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Tuple

import numpy as np
import torch

from .config import load_config
from .errors import TaggerError
from .evaluate import evaluate_model, format_table
from .files import npz_part_files, read_npz, write_text
from .float16 import export_float16, params_digest, rounding_preimage
from .inputs import read_params
from .models import Split, build_model
from .precision import autocast, cpu_model
from .reproduce.plan import Case, PlannedRun
from .training.rundir import CONFIG, CURVES, METRICS, PARAMS, PARAMS_FP16, RUN, last_validated, read_metrics
from .training.streams import load_examples
from .training.trainer import validation_generator
from .visualize import Panel, draw_example_rows, plot_curves

PUBLISH, FP16_CHANGE, FIGURE = "publish.json", "fp16_change.json", "figure4.png"
ROUNDING_DRAWS = 2  # float32 weight sets drawn within the float16 rounding intervals (float32 weights gone)


@dataclass(frozen=True)
class PublishSettings:
    """How `publish_run` scores and what it keeps."""

    seed: int = 0  # seed of the evaluations' noise and m0 draws
    threads: int = 1  # CPU threads of the evaluations (1: the same numbers on every run on one machine)
    note: Optional[str] = None  # a sentence on how the run was trained, for the README (kept on reruns)
    allow_unfinished: bool = False  # publish a run that has not finished its epochs (dry runs)
    force: bool = False  # recompute every file, also those whose inputs are unchanged
    progress: bool = False  # progress bars on the evaluations


SCORES = ("denoising_cost", "ami", "ari", "class_error")  # per-iteration scores, where a model has them
FIGURE_EXAMPLES = 7  # examples 0..6 of the first scoring's split; then the first example of each panel case


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


def scores_of(result: dict) -> tuple:
    """The SCORES an evaluation holds."""
    return tuple(key for key in SCORES if key in result)


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


def _param_files(out: str) -> Tuple[List[str], int]:
    """The names of the files results/NAME/ (`out`) holds its float16 weights in (params-fp16.npz and,
    for a model past `float16.PART_BYTES`, its other parts) and their bytes together."""
    paths = npz_part_files(os.path.join(out, PARAMS_FP16))
    return [os.path.basename(p) for p in paths], sum(os.path.getsize(p) for p in paths)


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
                last_valid_denoising_cost=last_validated(rows).get("valid_denoising_cost"),
                seed=config.seed, precision=started.get("precision"), compiled=started.get("compile"),
                device=started.get("device"), world_size=started.get("world_size"), started=started.get("started"),
                data=started.get("hdf5"))


def publish_run(run: Optional[str], planned: PlannedRun, results: str, data_files: Mapping[str, str],
                settings: PublishSettings = PublishSettings(), echo: Callable[[str], None] = print) -> str:
    """Write results/NAME/ for the planned run `planned` (see the module docstring) from the run
    directory `run` (None: complete results/NAME from its own files); data_files: the plan's data set
    names -> their files. Returns the folder."""
    name, out = planned.name, os.path.join(results, planned.name)
    source, needed = (run, (CONFIG, PARAMS)) if run is not None else (out, (CONFIG, METRICS, PARAMS_FP16))
    for path in (os.path.join(source, file) for file in needed):
        if not os.path.isfile(path):
            raise TaggerError(f"{path} is missing: {source} is not a finished run directory"
                              if run is not None else f"{path} is missing: there is no published {name} to complete")
    config = load_config(os.path.join(source, CONFIG))
    changed = sorted(k for k, v in planned.config().to_dict().items() if config.to_dict().get(k) != v)
    if changed:
        raise TaggerError(f"{source} is not a run of the plan's {name}: its config differs in {', '.join(changed)}")
    facts = run_facts(source, config)
    if not facts["finished"] and not settings.allow_unfinished:
        raise TaggerError(f"{source} has finished {facts['epochs']} of {facts['num_epochs']} epochs; publish it when "
                          "it is done (or allow unfinished runs for a dry run)")
    cases = planned.scorings
    data = {case.data: data_files[case.data] for case in cases}
    missing = [f"{key}={path}" for key, path in data.items() if not os.path.isfile(path)]
    if missing:
        raise TaggerError(f"data file(s) missing: {', '.join(missing)} (`tagger-torch reproduce run` makes them; "
                          "docs/data.md)")
    iterations = planned.iterations or config.n_iterations
    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, CONFIG), config.to_json() + "\n")
    metrics, copied = os.path.join(out, METRICS), False
    if run is not None:
        exported = export_float16(os.path.join(run, PARAMS), os.path.join(out, PARAMS_FP16))
        copied = not os.path.isfile(metrics) or file_sha256(metrics) != file_sha256(os.path.join(run, METRICS))
        if copied:
            shutil.copyfile(os.path.join(run, METRICS), metrics)
    if copied or not os.path.isfile(os.path.join(out, CURVES)):
        plot_curves(read_metrics(metrics), os.path.join(out, CURVES))

    fp16 = read_params(os.path.join(out, PARAMS_FP16))
    files, size = _param_files(out)
    if run is None:
        exported = dict(n_parameters=sum(int(np.size(v)) for v in fp16.values()))
    else:
        echo(f"{' + '.join(files)}: {'written' if exported['written'] else 'unchanged'} ({size / 1e6:.1f} MB)")
    digest = params_digest(fp16)
    data_sha = {key: file_sha256(path) for key, path in data.items()}
    seed, force = settings.seed, settings.force
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        model = _load(config, fp16)
        scores = {}
        for case in cases:
            expected = dict(params_digest=digest, data_sha256=data_sha[case.data], split=case.split,
                            iterations=iterations, seed=seed, requested_groups=case.groups)
            path = os.path.join(out, f"{case.key}.json")
            scores[case.key] = _kept(path, expected, force)
            if scores[case.key] is not None:
                echo(f"{case.key}.json: unchanged ({case.description})")
                continue
            echo(f"{case.key}.json: {case.description}, {data[case.data]} ...")
            result = evaluate_model(model, data[case.data], case.split, seed=seed, progress=settings.progress,
                                    precision="fp32", n_groups=case.groups, n_iterations=iterations)
            scores[case.key] = {"case": case.key, "description": case.description, **result, **expected,
                                "params_file": PARAMS_FP16, **machine_facts(settings.threads),
                                "command": evaluate_line(name, case, data[case.data], iterations, seed)}
            _write_json(path, scores[case.key])
            echo("  " + ", ".join(f"{key} at T={iterations}: {result[key][-1]:.3f}" for key in scores_of(result))
                 + f" ({result['seconds']:.0f} s)")
        first = cases[0]
        reference = dict(score=scores[first.key], data=data[first.data], data_sha256=data_sha[first.data])
        if run is not None:
            _publish_fp16_change(run, out, config, reference, exported, digest, force, settings.progress, echo)
        else:
            _publish_fp16_change_without_fp32(out, config, reference, fp16, exported, digest, data_files[planned.data],
                                              force, settings.progress, echo)
        if config.grouping and (force or not os.path.isfile(os.path.join(out, FIGURE)) or
                                    (_read_json(os.path.join(out, PUBLISH)) or {}).get("params_digest") != digest):
            panels = [Panel(f"{first.split} #{i}", data[first.data], first.split, i) for i in range(FIGURE_EXAMPLES)]
            panels += [Panel(f"{case.panel}\n{case.split} #0", data[case.data], case.split, 0, case.groups)
                       for case in cases if case.panel]
            extra = "; ".join(case.description for case in cases if case.panel)
            draw_example_rows(model, panels, os.path.join(out, FIGURE),
                              f"{name}: {FIGURE_EXAMPLES} {first.split} examples" + (f"; {extra}" if extra else "")
                              + f" (trained with K={config.n_groups}); clean input, T={iterations}",
                              n_iterations=iterations, seed=seed)
            echo(f"{FIGURE}: written")
    finally:
        torch.set_num_threads(previous_threads)
    note = settings.note
    if note is None:  # a later publish without a note keeps the first one's
        note = (_read_json(os.path.join(out, PUBLISH)) or {}).get("note")
    _write_json(os.path.join(out, PUBLISH), dict(
        name=name, description=planned.description, run=run and os.path.abspath(run), training=facts, note=note,
        params=dict(file=PARAMS_FP16, files=files, bytes=size, params_digest=digest,
                    **{k: v for k, v in exported.items() if k != "written"}),
        data={key: dict(path=path, sha256=data_sha[key]) for key, path in data.items()},
        params_digest=digest, evaluation=dict(seed=seed, iterations=iterations, threads=settings.threads),
        command=f"tagger-torch reproduce publish {name}"))
    echo(f"{name}, {first.description}:\n{format_table(scores[first.key])}")
    return out


def _score_like(config, params: Mapping[str, np.ndarray], reference: dict, progress: bool) -> dict:
    """The reference scoring (`publish_run`'s first case) recomputed from `params` with its settings:
    its scores and `seconds`."""
    score = reference["score"]
    result = evaluate_model(_load(config, params), reference["data"], score["split"], seed=score["seed"],
                            progress=progress, precision="fp32", n_groups=score["requested_groups"],
                            n_iterations=score["iterations"])
    return {key: result[key] for key in scores_of(result) + ("seconds",)}


def _fp16_minus(fp16: dict, other: dict) -> dict:
    """The float16 scores minus `other`'s, per score and iteration."""
    return {key: [a - b for a, b in zip(fp16[key], other[key])] for key in scores_of(other)}


def _fp16_expected(reference: dict, digest: str, **more) -> dict:
    score = reference["score"]
    return dict(params_digest=digest, data_sha256=reference["data_sha256"], split=score["split"],
                iterations=score["iterations"], seed=score["seed"], **more)


def _publish_fp16_change(run, out, config, reference, exported, digest, force, progress, echo) -> None:
    """fp16_change.json: the reference scoring from the run's float32 parameters with its settings,
    beside the float16 scores, and their differences per iteration."""
    fp32 = read_npz(os.path.join(run, PARAMS), "parameter")
    expected = _fp16_expected(reference, digest, fp32_params_digest=params_digest(fp32))
    path = os.path.join(out, FP16_CHANGE)
    if _kept(path, expected, force) is not None:
        echo(f"{FP16_CHANGE}: unchanged")
        return
    echo(f"{FP16_CHANGE}: {reference['score']['case']} from the float32 {os.path.join(run, PARAMS)} ...")
    result = _score_like(config, fp32, reference, progress)
    weights = {k: v for k, v in exported.items() if k != "written"}
    change = _fp16_minus(reference["score"], result)
    _write_json(path, {**expected, "fp16": {k: reference["score"][k] for k in change},
                       "fp32": {k: result[k] for k in change}, "fp16_minus_fp32": change,
                       "max_abs_change": {k: max(abs(x) for x in v) for k, v in change.items()},
                       "weights": weights, "seconds": result["seconds"], **machine_facts(torch.get_num_threads())})
    echo("  change at the last iteration from float16 storage: "
         + ", ".join(f"{k} {v[-1]:+.2e}" for k, v in change.items()))


def recompute_validation(config, params: Mapping[str, np.ndarray], hdf5: str, epoch: int,
                         device_type: str = "cpu") -> list:
    """The validation denoising cost per iteration that training logs after epoch `epoch`
    (metrics.jsonl's `valid_denoising_cost`), recomputed in fp32 from `params`: same split, batches
    and noise (`validation_generator`). device_type: the kind of device the run trained on (the
    metrics line's `device`; lines without it come from CPU runs), whose generator drew that noise:
    the replay runs there."""
    device = torch.device(device_type)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TaggerError(f"epoch {epoch}'s validation noise was drawn on CUDA; recompute it on a machine with a GPU")
    valid = load_examples(hdf5, "valid", config, device, config.uses_labels)
    with torch.no_grad(), autocast("fp32", device):
        return _load(config, params).to(device).evaluate(
            Split(valid.x, valid.labels), batch_size=config.valid_batch_size,
            generator=validation_generator(config.seed, epoch, device))["denoising_cost"]


def _publish_fp16_change_without_fp32(out, config, reference, fp16, exported, digest, training_data, force, progress,
                                      echo) -> None:
    """fp16_change.json when the run's float32 parameters are gone, two checks that need none:
    `final_validation`: the last epoch's validation recomputed from the float16 weights with the
    trainer's own noise (`validation_generator`) on `training_data`, beside the cost the float32
    weights logged in metrics.jsonl; `rounding_draws`: the reference scoring from ROUNDING_DRAWS
    float32 weight sets drawn within the float16 weights' rounding intervals (`rounding_preimage`:
    each a float32 original the float16 file is consistent with), beside the float16 scores."""
    last = read_metrics(os.path.join(out, METRICS))[-1]  # the last epoch validates (`validates_after`)
    score = reference["score"]
    expected = _fp16_expected(reference, digest, fp32_params_digest=None, n_rounding_draws=ROUNDING_DRAWS)
    path = os.path.join(out, FP16_CHANGE)
    if _kept(path, expected, force) is not None:
        echo(f"{FP16_CHANGE}: unchanged")
        return
    echo(f"{FP16_CHANGE}: no float32 weights; epoch {last['epoch']}'s validation from the float16 ones ...")
    started = time.perf_counter()
    recomputed = recompute_validation(config, fp16, training_data, last["epoch"], last.get("device", "cpu"))
    logged = last["valid_denoising_cost"]
    final_validation = dict(epoch=last["epoch"], fp32_logged=logged, fp16=recomputed,
                            fp16_minus_fp32=[a - b for a, b in zip(recomputed, logged)])
    draws = []
    for draw in range(ROUNDING_DRAWS):
        echo(f"  {score['case']} from float32 weights drawn within the float16 rounding intervals ({draw + 1} of "
             f"{ROUNDING_DRAWS}) ...")
        rng = np.random.default_rng([score["seed"], draw])
        scores = _score_like(config, {k: rounding_preimage(fp16[k], rng) for k in sorted(fp16)}, reference, progress)
        draws.append({key: scores[key] for key in scores_of(scores)})
    change = [_fp16_minus(score, d) for d in draws]
    rounding = dict(fp16={key: score[key] for key in scores_of(draws[0])}, draws=draws, fp16_minus_draw=change,
                    max_abs_change={key: max(abs(x) for c in change for x in c[key]) for key in change[0]})
    _write_json(path, {**expected, "fp32_params": "gone: fp16_change.json holds the checks that need none",
                       "final_validation": final_validation, "rounding_draws": rounding,
                       "weights": exported,
                       "seconds": round(time.perf_counter() - started, 1), **machine_facts(torch.get_num_threads())})
    echo(f"  epoch {last['epoch']} validation cost change from float16 storage (T=1..): "
         + " ".join(f"{x:+.1e}" for x in final_validation["fp16_minus_fp32"])
         + "; last-iteration change to float32 draws: "
         + " ".join(", ".join(f"{k} {v[-1]:+.1e}" for k, v in c.items()) for c in change))

"""scripts/table2.py: the flattening rule that picks the baselines' epochs, and the results table."""
import importlib.util
import json
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def table2():
    spec = importlib.util.spec_from_file_location("table2", os.path.join(HERE, "..", "scripts", "table2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(errors, steps_per_epoch=10):
    return [{"epoch": i + 1, "steps": (i + 1) * steps_per_epoch, "valid_class_error": [e], "train_time_s": 10.0,
             "valid_time_s": 1.0} for i, e in enumerate(errors)]


def test_flattened_when_the_last_window_gains_less_than_tol(table2):
    assert not table2.flattened(rows([50, 40, 30, 20]), window=2, tol=0.3)  # still falling
    assert table2.flattened(rows([50, 40, 30, 30.1, 29.8]), window=2, tol=0.3)  # best 29.8 vs 30: < 0.3 gained
    assert not table2.flattened(rows([50, 40, 30, 30.1, 29.6]), window=2, tol=0.3)  # 0.4 gained
    assert not table2.flattened(rows([50, 40]), window=2, tol=0.3)  # nothing before the window


def test_flattened_verb_exit_status_and_stop_file(tmp_path, table2):
    """table2.sh trains on only on exit status 3: 0 means done (stop.json says why), others are failures."""
    with open(tmp_path / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows([50, 40, 30, 20]))
    verb = ["flattened", str(tmp_path), "--window", "2", "--min-epochs", "2", "--max-epochs"]
    assert table2.main(verb + ["10"]) == table2.TRAIN_ON == 3 and not (tmp_path / "stop.json").exists()
    assert table2.main(verb + ["4"]) == 0
    assert json.loads((tmp_path / "stop.json").read_text())["why"] == "reached the cap of 4 epochs"


def test_result_and_collect_write_the_table(tmp_path, table2, monkeypatch):
    run = tmp_path / "runs" / "f2-fc-mlp-1k"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows([80, 79, 78.9])))
    (run / "commands.txt").write_text("tagger-torch train --hdf5 /some/where/datasets/freq20-2mnist.h5 "
                                      "--config /repo/results/table2/configs/c.json\n")
    (run / "test.json").write_text(json.dumps({"class_error": [78.5], "class_cost": [2.1], "seconds": 1.0,
                                               "iterations": 1}))
    results = tmp_path / "results"
    for argv in (["result", "f2-fc-mlp-1k", str(run), str(run / "test.json"), "--results", str(results)],
                 ["collect", "--results", str(results), "--runs", str(tmp_path / "runs")]):
        monkeypatch.setattr(sys, "argv", ["table2.py"] + argv)
        assert table2.main() == 0
    readme = (results / "README.md").read_text()
    assert "**78.5** (3 ep, 33 s) \\| paper 79.4 ± 0.3" in readme
    assert "`tagger-torch train --hdf5 datasets/freq20-2mnist.h5 --config results/table2/configs/c.json`" in readme
    assert "needs a GPU" in readme


def test_tagger_cell_names_both_stages_with_their_steps(tmp_path, table2, monkeypatch):
    """A shortened Tagger run's cell gives each stage's epochs and steps (it trains on a smaller file)."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    for name, metrics in (("f1-tagger-stage1", rows([90, 90, 90], 100)), ("f1-tagger-stage2-1k", rows([70, 60]))):
        (runs / name).mkdir(parents=True)
        (runs / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    stage2 = runs / "f1-tagger-stage2-1k"
    (stage2 / "test.json").write_text(json.dumps({"class_error": [62.0, 58.25], "class_cost": [1.9, 1.8],
                                                  "seconds": 5.0, "iterations": 2}))
    for argv in (["result", "f1-tagger-stage2-1k", str(stage2), str(stage2 / "test.json"), "--results",
                  str(results), "--stage1", str(runs / "f1-tagger-stage1")],
                 ["collect", "--results", str(results), "--runs", str(runs)]):
        monkeypatch.setattr(sys, "argv", ["table2.py"] + argv)
        assert table2.main() == 0
    readme = (results / "README.md").read_text()
    assert ("shortened CPU run: **58.2** (stage 2: 2 ep of 10 steps, 22 s; stage 1: 3 ep of 100 steps, 33 s; "
            "at T = 2) \\| paper 10.5 ± 0.9") in readme
    assert "* 2 epochs (a fixed number, scripts/table2.sh); " in readme
    assert "* stage 1: 3 ep of 100 steps, 33 s; commands:" in readme
    assert f"on {table2.cpu_model()} (torch's kernels: {table2.cpu_capability()}, " in readme


def test_every_row_without_a_result_says_why(tmp_path, table2, monkeypatch):
    """Each of the paper's 16 cells is in the table beside its paper figure; a started run shows its epochs
    and last validation error, a queued one its cost from timings.json, Tagger's full rows the GPU."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    (runs / "f1-fc-mlp").mkdir(parents=True)
    (runs / "f1-fc-mlp" / "commands.txt").write_text("tagger-torch train\n")
    (runs / "f1-fc-mlp" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows([30, 25.04])))
    results.mkdir()
    presets = {p for plan in table2.PLANS.values() for _, p in plan}
    (results / "timings.json").write_text(json.dumps({"rows": [
        {"preset": p, "s_per_epoch": 100.0 if "fc-mlp" in p else 7200.0} for p in sorted(presets)]}))
    monkeypatch.setattr(sys, "argv", ["table2.py", "collect", "--results", str(results), "--runs", str(runs)])
    assert table2.main() == 0
    readme = (results / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| FC") or line.startswith("| ConvNet")]
    assert len(table) == 4 and all(line.count("\\| paper ") == 4 for line in table)
    assert all(f"paper {paper}" in readme for paper in table2.PAPER.values())
    assert "in progress: 2 epochs so far (valid error 25.0 %) \\| paper 31.1 ± 2.2" in readme
    assert "not run yet: queued (60 ep x 100 s ~ 1.7 h) \\| paper 55.2 ± 1.0" in readme  # f2-fc-mlp
    assert "not run yet: queued (10 ep x 7200 s ~ 20 h) \\| paper 7.2 ± 0.1" in readme  # f1-fc-ladder
    assert readme.count("not run: needs a GPU (~") == 3
    assert "queued in scripts/table2.sh (`scripts/table2.sh f1-fc-ladder` runs it); at most 10 ep x" in readme
    assert len([line for line in readme.splitlines() if line.startswith("* ")]) == 16  # no result file here


def test_plans_are_table2_sh_caps(table2):
    """PLANS (the costs in the table) holds the epoch caps scripts/table2.sh trains to."""
    with open(os.path.join(HERE, "..", "scripts", "table2.sh"), encoding="utf-8") as f:
        script = f.read()
    caps = dict(re.findall(r"^\s+(f[12]-[a-z-]+(?:-1k)?)\)\s+until_flat .* (\d+) ;;$", script, re.M))
    assert len(caps) == 12 and set(caps) | {"f1-tagger-stage2-1k"} == set(table2.PLANS)
    assert all(table2.PLANS[name][0][0] == int(cap) for name, cap in caps.items())
    shortened = [int(n) for n in re.findall(r"TAGGER_STAGE[12]_EPOCHS:-(\d+)", script)]
    (n_train,) = {int(n) for n in re.findall(r"TAGGER_N_TRAIN:-(\d+)", script)}
    plan = [epochs for epochs, _ in table2.PLANS["f1-tagger-stage2-1k"]]
    assert len(shortened) == 2 and [epochs * n_train / 50000 for epochs in shortened] == plan
    assert set(table2.PLANS) <= set(table2.RUNS)


CONFIGS = os.path.join(HERE, "..", "results", "table2", "configs")
# CONFIGS/NAME.json: (NAME, the preset it is passed with, the fields it sets)
SHIPPED_CONFIGS = [
    ("tagger-stage2-1k", "freq20-1mnist-continue", {"class_cost_x": 0.05, "input_noise": 0.15, "lr": 0.0005}),
    ("fc-ladder-mnist-1k", "freq20-1mnist-fc-ladder-1k", {"hidden": (1000, 500, 250, 250, 250)}),
    ("fc-ladder-noise015", "freq20-2mnist-fc-ladder", {"noise_std": 0.15}),
    ("fc-ladder-lr001", "freq20-1mnist-fc-ladder-1k", {"lr": 0.001, "labeled_samples": 1000}),
    ("fc-ladder-gamma", "freq20-1mnist-fc-ladder-1k", {"denoising_weights": (0,) * 6 + (1,), "noise_std": 0.3}),
    ("fc-ladder-no-denoising", "freq20-2mnist-fc-ladder", {"denoising_weights": (0,) * 7, "noise_std": 0.3}),
    ("fc-ladder-clean", "freq20-2mnist-fc-ladder", {"denoising_weights": (0,) * 7, "noise_std": 0}),
    ("fc-ladder-clean-lr001", "freq20-2mnist-fc-ladder", {"denoising_weights": (0,) * 7, "noise_std": 0, "lr": 0.001}),
    ("fc-ladder-clean-mlp-widths", "freq20-2mnist-fc-ladder",
     {"denoising_weights": (0,) * 5, "noise_std": 0, "hidden": (2000, 2000, 2000)}),
    ("fc-ladder-clean-mlp-widths-lr001", "freq20-2mnist-fc-ladder",
     {"denoising_weights": (0,) * 5, "noise_std": 0, "hidden": (2000, 2000, 2000), "lr": 0.001}),
]


@pytest.mark.parametrize("name, preset, fields", SHIPPED_CONFIGS)
def test_shipped_configs_resolve_on_their_presets(name, preset, fields):
    """results/table2/configs/*.json, as docs/baselines.md and table2.sh pass them with --config."""
    from tagger_torch.config import resolve_config
    config = resolve_config(preset, os.path.join(CONFIGS, name + ".json"))
    assert {k: getattr(config, k) for k in fields} == fields


def test_every_shipped_config_is_tested():
    shipped = {f[:-5] for f in os.listdir(CONFIGS)}
    assert shipped == {name for name, _, _ in SHIPPED_CONFIGS}

"""scripts/table2.py: the flattening rule that picks the baselines' epochs, and the results table."""
import importlib.util
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def table2():
    spec = importlib.util.spec_from_file_location("table2", os.path.join(HERE, "..", "scripts", "table2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(errors):
    return [{"epoch": i + 1, "valid_class_error": [e], "train_time_s": 10.0, "valid_time_s": 1.0}
            for i, e in enumerate(errors)]


def test_flattened_when_the_last_window_gains_less_than_tol(table2):
    assert not table2.flattened(rows([50, 40, 30, 20]), window=2, tol=0.3)  # still falling
    assert table2.flattened(rows([50, 40, 30, 30.1, 29.8]), window=2, tol=0.3)  # best 29.8 vs 30: < 0.3 gained
    assert not table2.flattened(rows([50, 40, 30, 30.1, 29.6]), window=2, tol=0.3)  # 0.4 gained
    assert not table2.flattened(rows([50, 40]), window=2, tol=0.3)  # nothing before the window


def test_result_and_collect_write_the_table(tmp_path, table2, monkeypatch):
    run = tmp_path / "runs" / "f2-fc-mlp-1k"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows([80, 79, 78.9])))
    (run / "commands.txt").write_text("tagger-torch train --hdf5 /some/where/datasets/freq20-2mnist.h5\n")
    (run / "test.json").write_text(json.dumps({"class_error": [78.5], "class_cost": [2.1], "seconds": 1.0,
                                               "iterations": 1}))
    results = tmp_path / "results"
    for argv in (["result", "f2-fc-mlp-1k", str(run), str(run / "test.json"), "--results", str(results)],
                 ["collect", "--results", str(results), "--runs", str(tmp_path / "runs")]):
        monkeypatch.setattr(sys, "argv", ["table2.py"] + argv)
        assert table2.main() == 0
    readme = (results / "README.md").read_text()
    assert "**78.5** (3 ep, 33 s) \\| paper 79.4 ± 0.3" in readme
    assert "`tagger-torch train --hdf5 datasets/freq20-2mnist.h5`" in readme
    assert "needs a GPU" in readme

"""scripts/device_check.sh on the CPU with small sizes: every part runs, resumes, and the figures land
in OUT/summary.json (on a GPU the same script runs the CUDA tests, bench and training; docs/speed.md)."""
import json
import os
import subprocess
import sys

from tiny import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_device_check_runs_every_part_on_the_cpu(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "WORK": str(tmp_path / "work"), "DEVICE": "cpu",
           "PRECISIONS": "fp32", "COMPILE": "--no-compile", "BENCH": f"--config {config} --steps 2 --warmup 1",
           "TRAIN": f"--config {config}", "N_TRAIN": "300", "EPOCHS": "2", "MAX_STEPS": "4", "DDP": "1",
           "OMP_NUM_THREADS": "1", "PYTEST": "tests/test_devices.py -k no_cuda_at_all"}
    done = subprocess.run(["bash", os.path.join(ROOT, "scripts", "device_check.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    log = (out / "device_check.log").read_text()
    assert done.returncode == 0, done.stdout + log
    summary = json.loads((out / "summary.json").read_text())
    assert [(p["part"], p["status"]) for p in summary["parts"]] == [
        ("pytest", 0), ("bench-fp32", 0), ("data", 0), ("train-stop", 0), ("train-resume", 0),
        ("torchrun-stop", 0), ("torchrun-resume", 0)]
    assert summary["bench"]["fp32"]["images_per_s"] > 0 and summary["bench"]["fp32"]["optimizer_ms"] > 0
    assert [r["epoch"] for r in summary["train_metrics"]] == [1, 2]
    assert [(r["epoch"], r["world_size"]) for r in summary["torchrun_metrics"]] == [(1, 2)]
    assert "stopped after max_steps in epoch 1 at step 4/6" in log and "1 passed" in log
    assert "bench fp32:" in done.stdout and "train epoch 2:" in done.stdout
    assert sorted(os.listdir(out)) == ["device_check.log", "summary.json"]

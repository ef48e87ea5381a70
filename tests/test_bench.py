"""`tagger-torch bench`: the FLOP count by hand and against torch's counter, the JSON fields, errors;
the command line's OMP_WAIT_POLICY."""
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from tagger_torch.config import from_dict
from tagger_torch.model import Tagger
from tagger_torch.precision import cpu_bf16_native, cpu_capability
from tagger_torch.tagger import flop_per_step as model_flop_per_step, layer_products
from tiny import TINY, invoke

# D = 10, H = 8-6-4, K = 2, T = 2, B = 5: rows K*B = 10
SMALL = {"in_dim": [10], "encoder_proj": [8, 6, 4], "n_groups": 2, "n_iterations": 2, "batch_size": 5,
         "valid_batch_size": 5}
BENCH_TINY = {**TINY, "batch_size": 20}


def test_flop_count_by_hand():
    config = from_dict(SMALL)
    assert layer_products(config, 10) == [(10, 40, 8), (10, 8, 6), (10, 6, 4), (10, 6, 8), (10, 4, 6),
                                          (10, 8, 10), (10, 8, 10)]
    # forward per iteration: 2*10*(40*8 + 8*6 + 6*4 + 4*6 + 6*8 + 8*10 + 8*10) = 12480;
    # T = 2 iterations x (forward + 2 backward products) less the first iteration's W input gradient
    assert model_flop_per_step(config, 5) == 2 * 3 * 12480 - 2 * 10 * 40 * 8 == 68480
    classifying = from_dict({**SMALL, "encoder_proj": [8, 6, 11], "class_cost_x": 1.0})
    assert model_flop_per_step(classifying, 5) == 2 * model_flop_per_step(classifying.replace(class_cost_x=0.0), 5)


@pytest.mark.parametrize("config_dict", [SMALL, {**SMALL, "input_type": "continuous"}])
def test_flop_count_equals_torchs_count_of_a_training_step(config_dict):
    config = from_dict(config_dict)
    model = Tagger(config)
    x = torch.rand(config.batch_size, config.input_size, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(x, generator=torch.Generator().manual_seed(1)).denoising_cost.mean().backward()
    counts = counter.get_flop_counts()["Global"]
    products = {op: n for op, n in counts.items() if "mm" in str(op)}
    assert sum(products.values()) == model_flop_per_step(config, config.batch_size)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bench_json_fields(tmp_path, precision):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(BENCH_TINY))
    result = invoke("bench", "--config", cfg, "--steps", 2, "--warmup", 1, "--device", "cpu",
                    "--precision", precision, "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    for key in ("images_per_s", "ms_per_step", "model_gflop_per_step", "achieved_gflops", "peak_gflops",
                "fraction_of_peak"):
        assert r[key] > 0, key
    assert (r["precision"], r["device"], r["compiled"]) == (precision, "cpu", False)
    assert r["model_gflop_per_step"] == pytest.approx(model_flop_per_step(from_dict(BENCH_TINY), 20) / 1e9)
    assert r["images_per_s"] == pytest.approx(20 / (r["ms_per_step"] / 1e3))
    assert r["fraction_of_peak"] == pytest.approx(r["achieved_gflops"] / r["peak_gflops"])
    # what the CPU supports, and the one-line warning where bf16 is emulated (tests/test_precision.py)
    assert (r["cpu_capability"], r["cpu_bf16_native"]) == (cpu_capability(), cpu_bf16_native())
    slow = precision == "bf16" and not r["cpu_bf16_native"]
    assert result.stderr.count("no native bf16") == slow, result.stderr


def test_bench_table(tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(BENCH_TINY))
    result = invoke("bench", "--config", cfg, "--steps", 1, "--warmup", 1, "--device", "cpu", "--precision", "fp32")
    assert result.exit_code == 0, result.output
    assert "images/s" in result.output and "GFLOP/s" in result.output and "eager" in result.output


@pytest.mark.parametrize("args, message", [
    (["--precision", "tf32", "--device", "cpu"], "tf32 needs a CUDA device"),
    (["--config", "/nonexistent/c.json"], "config file not found"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_bench_bad_inputs(args, message):
    result = invoke("bench", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr


@pytest.mark.parametrize("user, seen", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_cli_sets_omp_wait_policy_passive_before_torch_unless_the_user_set_it(user, seen):
    # the OpenMP runtime reads OMP_WAIT_POLICY when torch is imported: OMP_DISPLAY_ENV prints what it read
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update({"OMP_DISPLAY_ENV": "VERBOSE", **({"OMP_WAIT_POLICY": user} if user else {})})
    code = "import sys; from tagger_torch.cli import main; assert 'torch' not in sys.modules; main()"
    done = subprocess.run([sys.executable, "-c", code, "bench", "--help"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    if "OPENMP DISPLAY ENVIRONMENT" not in done.stderr:
        pytest.skip("this torch's OpenMP runtime does not print OMP_DISPLAY_ENV")
    assert re.findall(r"OMP_WAIT_POLICY\s*=\s*'(\w+)'", done.stderr) == [seen], done.stderr
    # libgomp shows an unset policy as PASSIVE too, but spins 300 000 rounds; PASSIVE spins none
    spin = re.findall(r"GOMP_SPINCOUNT\s*=\s*'(\d+)'", done.stderr)
    assert not spin or (spin == ["0"]) == (seen == "PASSIVE"), done.stderr

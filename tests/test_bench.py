"""`tagger-torch bench` for every model: the FLOP count by hand and against torch's counter, the floor's
products, the JSON fields, errors; the command line's OMP_WAIT_POLICY."""
import json
import os
import platform
import re
import statistics
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from tagger_torch import bench
from tagger_torch.config import from_dict
from tagger_torch.models import build_model
from tagger_torch.precision import cpu_bf16_native, cpu_capability
from tagger_torch.tagger import flop_per_step as model_flop_per_step, layer_products, step_products
from test_baselines import TINY_MODELS
from tiny import TINY, assert_one_line_error, invoke

# D = 10, H = 8-6-4, K = 2, T = 2, B = 5: rows K*B = 10
SMALL = {"in_dim": [10], "encoder_proj": [8, 6, 4], "n_groups": 2, "n_iterations": 2, "batch_size": 5,
         "valid_batch_size": 5}
CLASSIFYING = {**SMALL, "input_type": "continuous", "encoder_proj": [8, 6, 11], "class_cost_x": 1.0,
               "labeled_samples": 10}
BENCH_TINY = {**TINY, "batch_size": 20}
CPU = torch.device("cpu")


def test_flop_count_by_hand():
    config = from_dict(SMALL)
    assert layer_products(config, 10) == [(10, 40, 8), (10, 8, 6), (10, 6, 4), (10, 6, 8), (10, 4, 6),
                                          (10, 8, 10), (10, 8, 10)]
    # forward per iteration: 2*10*(40*8 + 8*6 + 6*4 + 4*6 + 6*8 + 8*10 + 8*10) = 12480;
    # T = 2 iterations x (forward + 2 backward products) less the first iteration's W input gradient
    assert model_flop_per_step(config, 5) == 2 * 3 * 12480 - 2 * 10 * 40 * 8 == 68480
    classifying = from_dict({**SMALL, "encoder_proj": [8, 6, 11], "class_cost_x": 1.0})
    # a second, labelled pass whose cost (the last class cost) depends on y: its last iteration leaves out the
    # products after y (g_0_W, g_1_W and the heads z_u_W, m_u_W), forward and both gradients
    after_y = 2 * 10 * (6 * 8 + 11 * 6 + 8 * 10 + 8 * 10)
    unlabelled = model_flop_per_step(classifying.replace(class_cost_x=0.0), 5)
    assert model_flop_per_step(classifying, 5) == 2 * unlabelled - 3 * after_y


@pytest.mark.parametrize("fields", [SMALL, {**SMALL, "input_type": "continuous"}, CLASSIFYING, *TINY_MODELS.values()],
                         ids=["binary", "continuous", "classifying", *TINY_MODELS])
def test_flop_count_equals_torchs_count_of_a_training_step(fields):
    """Every model's count (`step_products`) is what torch counts in its step's cost and backward."""
    config = from_dict(fields)
    model = build_model(config)
    generator = torch.Generator().manual_seed(0)
    batch = bench.synthetic_batch(config, generator, CPU)
    with FlopCounterMode(display=False) as counter:
        model.batch_cost(batch, generator)[0].backward()
    assert counter.get_total_flops() == model.flop_per_step(config.batch_size) > 0


@pytest.mark.parametrize("fields", [SMALL, {**SMALL, "input_type": "continuous"}, CLASSIFYING, *TINY_MODELS.values()],
                         ids=["binary", "continuous", "classifying", *TINY_MODELS])
def test_a_compiled_backward_has_the_products_counted(fields):
    """The compiled step's backward graph (AOTAutograd, which decides what inductor computes) has one
    product per gradient of `step_products`: compiling skips what eager autograd skips. A convolution's
    backward is one node for both gradients; its output_mask says which it computes."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    aten, products = torch.ops.aten, []

    def gradients(node):
        if node.target is aten.convolution_backward.default:
            return sum(node.args[-1][:2])  # output_mask: (input, weight, bias)
        return int(node.target in (aten.mm.default, aten.addmm.default))

    def count_products(graph_module, inputs):
        products.append(sum(gradients(node) for node in graph_module.graph.nodes if node.op == "call_function"))
        return make_boxed_func(graph_module.forward)

    config = from_dict(fields)
    model = build_model(config)
    generator = torch.Generator().manual_seed(0)
    batch = bench.synthetic_batch(config, generator, CPU)
    backend = aot_autograd(fw_compiler=lambda graph_module, inputs: make_boxed_func(graph_module.forward),
                           bw_compiler=count_products)
    torch._dynamo.reset()
    model.batch_cost(batch, generator, torch.compile(model, backend=backend))[0].backward()
    assert sum(products) == sum(len(p.backward()) for p in model.step_products(config.batch_size)) > 0


def test_the_floor_times_each_forward_and_backward_product(monkeypatch):
    """Tagger's floor: T = 2 iterations of 7 products, each forward, weight gradient and input gradient,
    less the first W product's input gradient that autograd skips: 41 timings of the
    (m, k, n), (k, m, n) and (m, n, k) shapes, each distinct shape timed once."""
    config = from_dict(SMALL)
    timed = []
    monkeypatch.setattr(bench, "product_seconds", lambda m, k, n, *args: timed.append((m, k, n)) or 1.0)
    products = step_products(config, 5)
    assert bench.floor_seconds(products, "fp32", CPU) == 2 * 7 * 3 - 1 == 41
    first = products[0]
    assert (first.m, first.k, first.n, first.input_grad) == (10, 40, 8, False) and first.backward() == [(40, 10, 8)]
    assert products[7].backward() == [(40, 10, 8), (10, 8, 40)]  # the second iteration's W
    assert sorted(timed) == sorted(set(timed)) and set(timed) >= {(10, 40, 8), (40, 10, 8), (10, 8, 40)}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bench_json_fields(tmp_path, precision):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(BENCH_TINY))
    result = invoke("bench", "--config", cfg, "--steps", 2, "--warmup", 1, "--rounds", 3, "--device", "cpu",
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
    # three rounds of steps then floor: the medians, and each round's fraction pairs its own timings
    assert len(r["rounds"]) == 3 and all(one["fraction_of_floor"] == pytest.approx(one["floor_ms"] / one["ms_per_step"])
                                         for one in r["rounds"])
    for key in ("ms_per_step", "floor_ms", "fraction_of_floor"):
        assert r[key] == pytest.approx(statistics.median(one[key] for one in r["rounds"])), key
    assert r["floor_ms"] > 0 and 0 < r["optimizer_ms"] < r["ms_per_step"] and r["optimizer"] == "foreach"  # eager: the foreach form
    assert r["model"] == "tagger" and r["shape"]["encoder_proj"] == TINY["encoder_proj"]
    # the kernel's share: page faults and system time per step, under the command line's malloc (memory.py)
    assert r["minor_faults_per_step"] >= 0 and 0 <= r["system_s_per_step"] < r["ms_per_step"] / 1e3
    assert r["keeps_freed_memory"] is (platform.libc_ver()[0] == "glibc")
    assert {"in_dim", "encoder_proj", "n_groups", "n_iterations", "batch_size"} <= set(r["shape"])
    # what the CPU supports, and the one-line warning where bf16 is emulated (tests/test_precision.py)
    assert (r["cpu_capability"], r["cpu_bf16_native"]) == (cpu_capability(), cpu_bf16_native())
    slow = precision == "bf16" and not r["cpu_bf16_native"]
    assert result.stderr.count("no native bf16") == slow, result.stderr


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_bench_times_every_model(tmp_path, model):
    cfg = tmp_path / "model.json"
    cfg.write_text(json.dumps(TINY_MODELS[model]))
    result = invoke("bench", "--config", cfg, "--steps", 1, "--warmup", 1, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    config = from_dict(TINY_MODELS[model])
    assert r["model"] == model and r["shape"]["batch_size"] == config.batch_size
    assert r["model_gflop_per_step"] == pytest.approx(build_model(config).flop_per_step(config.batch_size) / 1e9)
    assert r["floor_ms"] > 0 and r["images_per_s"] > 0


def test_bench_table(tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(BENCH_TINY))
    result = invoke("bench", "--config", cfg, "--steps", 1, "--warmup", 1, "--device", "cpu", "--precision", "fp32")
    assert result.exit_code == 0, result.output
    assert "images/s" in result.output and "GFLOP/s" in result.output and "eager" in result.output
    assert "floor" in result.output and "foreach Adam alone" in result.output
    assert re.search(r"of its speed \(rounds: \d+%, \d+%, \d+%\)", result.output)  # --rounds 3, the default


@pytest.mark.parametrize("args, message", [
    (["--precision", "tf32", "--device", "cpu"], "tf32 needs a CUDA device"),
    (["--config", "/nonexistent/c.json"], "config file not found"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_bench_bad_inputs(args, message):
    result = invoke("bench", *args)
    assert_one_line_error(result, message)


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

"""Precision and compile policies: resolution, errors, bf16 keeps float32 where it must, the CLI records them."""
import json

import pytest
import torch

from parity_tests.cases import perturbed_params
from parity_tests.tolerances import BF16_COST
from tagger_torch import precision
from tagger_torch.config import from_dict, get_preset
from tagger_torch.errors import TaggerError
from tagger_torch.model import Tagger
from tagger_torch.ops import project
from tagger_torch.precision import autocast, default_compile, resolve_precision
from tagger_torch.tagger import flop_per_step as model_flop_per_step
from tiny import TINY, invoke

CPU = torch.device("cpu")
WARNING = "no native bf16"  # in precision.precision_warning's line


def test_auto_precision_is_the_parity_tested_fp32(monkeypatch):
    # bf16 is opt-in until it groups as well as fp32 (docs/speed.md, "Quality"), on every CPU
    for native in (False, True):
        monkeypatch.setattr(precision, "cpu_bf16_native", lambda native=native: native)
        assert resolve_precision("auto", CPU) == "fp32"
        assert resolve_precision(None, CPU) == "fp32"


def test_auto_would_take_bf16_only_on_native_bf16_once_it_groups_as_well(monkeypatch):
    monkeypatch.setattr(precision, "BF16_GROUPS_AS_WELL", True)
    for native, expected in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(precision, "cpu_bf16_native", lambda native=native: native)
        assert resolve_precision("auto", CPU) == expected


@pytest.mark.parametrize("machine, flags, native", [
    ("x86_64", "fpu sse2 avx avx2 fma", False),  # e.g. Zen 3
    ("x86_64", "avx2 avx512f avx512bw avx512vl", False),  # AVX-512 without bf16 (Skylake-SP)
    ("x86_64", "avx2 avx512f avx512_bf16", True),  # Zen 4, Cooper Lake
    ("x86_64", "avx512f amx_bf16 amx_tile", True),  # Sapphire Rapids
    ("aarch64", "fp asimd sve", False),
    ("aarch64", "fp asimd sve bf16 i8mm", True),  # e.g. Graviton 3
    ("riscv64", "bf16", False),
])
def test_cpu_bf16_native_reads_the_cpu_flags(tmp_path, monkeypatch, machine, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    key = "Features" if machine == "aarch64" else "flags"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: some cpu\n{key}\t\t: {flags}\n\nprocessor\t: 1\n")
    assert precision._cpu_flags(str(cpuinfo)) == set(flags.split())
    monkeypatch.setattr(precision, "_cpu_flags", lambda: set(flags.split()))
    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    assert precision.cpu_bf16_native() is native


@pytest.mark.parametrize("block, name", [
    ("vendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n", "AMD EPYC (family 23, model 1)"),
    ("cpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n", "AMD EPYC (family 25, model 17)"),
    ("model name\t: some cpu\n", "some cpu"),  # no family or model listed: the name alone
])
def test_cpu_model_names_the_first_processor_with_its_family_and_model(tmp_path, block, name):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\n{block}flags\t\t: fpu avx2\n\nprocessor\t: 1\nmodel name\t: other\n")
    assert precision.cpu_model(str(cpuinfo)) == name


def test_bf16_on_a_cpu_without_native_bf16_warns_in_one_line(tmp_path, monkeypatch, trained_run, small_shapes_h5):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({**TINY, "batch_size": 20}))
    bench = ("bench", "--config", cfg, "--steps", 1, "--warmup", 1, "--device", "cpu", "--json", "--precision")
    for native in (False, True):
        monkeypatch.setattr(precision, "cpu_bf16_native", lambda native=native: native)
        for args in (bench + ("bf16",), bench + ("fp32",),
                     ("evaluate", "--run", trained_run, "--hdf5", small_shapes_h5, "--iterations", 1,
                      "--device", "cpu", "--precision", "bf16")):
            result = invoke(*args)
            assert result.exit_code == 0, result.output
            warnings = [line for line in result.stderr.splitlines() if WARNING in line]
            assert len(warnings) == (not native and "bf16" in args), (args, result.stderr)
            if warnings:
                assert "about 20x slower than fp32" in warnings[0]
    assert precision.precision_warning("bf16", torch.device("cuda")) is None  # CPUs only


def test_explicit_precisions_and_errors():
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(TaggerError, match="tf32 needs a CUDA device"):
        resolve_precision("tf32", CPU)
    with pytest.raises(TaggerError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)


def test_compile_pays_only_for_long_runs():
    shapes = get_preset("shapes50k20x20")
    gflop = model_flop_per_step(shapes, shapes.batch_size) / 1e9
    assert default_compile(100 * 500 * gflop)  # the Shapes protocol: 100 epochs of 500 steps
    assert not default_compile(100 * gflop)  # a short try
    assert not default_compile(2 * 6 * model_flop_per_step(from_dict(TINY), 50) / 1e9)


def test_bf16_runs_only_the_products_in_bf16():
    a, W = torch.randn(8, 5), torch.randn(5, 3)
    with autocast("bf16", CPU):
        assert (a @ W).dtype == torch.bfloat16
        assert project(a, W).dtype == torch.float32  # cast back to the master weights' dtype
    with autocast("fp32", CPU):
        assert torch.equal(project(a, W), a @ W)


def test_bf16_forward_is_close_to_fp32():
    config = from_dict(TINY)
    # off the release init, where the decoder outputs 0 and makes z and m constant
    model = Tagger(config, params=perturbed_params(config, seed=2, scale=0.3))
    x = (torch.rand(50, 400, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    fp32 = model(x, generator=torch.Generator().manual_seed(1))
    with autocast("bf16", CPU):
        bf16 = model(x, generator=torch.Generator().manual_seed(1))
    assert bf16.denoising_cost.dtype == torch.float32 and bf16.m.dtype == torch.float32
    torch.testing.assert_close(bf16.denoising_cost, fp32.denoising_cost, rtol=BF16_COST.rtol, atol=BF16_COST.atol)
    assert not torch.equal(bf16.m, fp32.m)  # the products really ran in bf16


def test_train_records_precision_and_resume_keeps_it(tmp_path, small_shapes_h5, monkeypatch):
    # one epoch of 6 steps (bf16 runs ~20x slower on CPUs without native bf16): 3 steps, then resumed
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: False)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({**TINY, "num_epochs": 1}))
    run = tmp_path / "run"
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", cfg, "--out", run,
                    "--device", "cpu", "--precision", "bf16", "--max-steps", 3)
    assert result.exit_code == 0, result.output
    assert "precision bf16, eager step" in result.stdout  # 6 tiny steps do not repay compiling
    assert result.stderr.count(WARNING) == 1, result.stderr
    with open(run / "run.json") as f:
        assert json.load(f)["precision"] == "bf16"
    result = invoke("train", "--resume", run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "precision bf16, eager step" in result.stdout
    assert result.stderr.count(WARNING) == 1, result.stderr  # the run's own bf16 warns, too
    with open(run / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert [(r["precision"], r["compiled"]) for r in rows] == [("bf16", False)]  # written after the resume

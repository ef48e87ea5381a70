"""Precision and compile policies: resolution, errors, bf16 keeps float32 where it must, the CLI records them."""
import json

import pytest
import torch

from tagger_torch.config import from_dict, get_preset
from tagger_torch.errors import TaggerError
from tagger_torch.model import Tagger, project
from tagger_torch.precision import autocast, default_compile, resolve_precision
from tiny import TINY, invoke

CPU = torch.device("cpu")


def test_auto_precision_is_the_parity_tested_fp32():
    # bf16 is opt-in until it groups as well as fp32 (docs/speed.md, "Quality")
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision(None, CPU) == "fp32"


def test_explicit_precisions_and_errors():
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(TaggerError, match="tf32 needs a CUDA device"):
        resolve_precision("tf32", CPU)
    with pytest.raises(TaggerError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)


def test_compile_pays_only_for_long_runs():
    from tagger_torch.bench import model_flop_per_step

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
    g = torch.Generator().manual_seed(2)  # off the release init, where c1 = c2 = 0 make z and m constant
    model = Tagger(config, params={name: value + 0.3 * torch.randn(value.shape, generator=g)
                                   for name, value in Tagger(config).state_dict().items()})
    x = (torch.rand(50, 400, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    fp32 = model(x, generator=torch.Generator().manual_seed(1))
    with autocast("bf16", CPU):
        bf16 = model(x, generator=torch.Generator().manual_seed(1))
    assert bf16.denoising_cost.dtype == torch.float32 and bf16.m.dtype == torch.float32
    torch.testing.assert_close(bf16.denoising_cost, fp32.denoising_cost, rtol=1e-2, atol=0)
    assert not torch.equal(bf16.m, fp32.m)  # the products really ran in bf16


def test_train_records_precision_and_resume_keeps_it(tmp_path, small_shapes_h5):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", cfg, "--out", run,
                    "--device", "cpu", "--precision", "bf16", "--max-steps", 3)
    assert result.exit_code == 0, result.output
    assert "precision bf16, eager step" in result.output  # 12 tiny steps do not repay compiling
    with open(run / "run.json") as f:
        assert json.load(f)["precision"] == "bf16"
    result = invoke("train", "--resume", run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "precision bf16, eager step" in result.output
    with open(run / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert [(r["precision"], r["compiled"]) for r in rows] == [("bf16", False)] * 2

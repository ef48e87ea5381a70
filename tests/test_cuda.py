"""The CUDA path (`pytest -m cuda`; scripts/device_check.sh runs it): a training step and an exact-enough
resume, a compiled step with CUDA graphs, epochs without a device sync, evaluate, segment's draws,
bf16 and tf32, publish's validation replay. Without a GPU every test here is skipped with the reason."""
import json
import os

import numpy as np
import pytest
import torch

from parity_tests.cases import perturbed_params
from parity_tests.tolerances import BF16_COST
from tagger_torch.config import from_dict
from tagger_torch.files import read_npz
from tagger_torch.model import Tagger
from tagger_torch.precision import autocast
from tagger_torch.publish import recompute_validation
from tagger_torch.segment import segment_examples
from tagger_torch.training import Trainer, run_training
from tagger_torch.training.rundir import read_metrics
from tiny import TINY, invoke

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device (torch.cuda.is_available() is False)")]

CUDA = torch.device("cuda")
# Resumed against uninterrupted on CUDA: the contract is bitwise on the CPU only (docs/training.md);
# a thirtieth of what one missed or repeated Adam step moves a parameter, as tests/test_resume_old_runs.py.
RESUME_ATOL = TINY["lr"] / 30


def params_of(run):
    return read_npz(os.path.join(run, "params.npz"))


def assert_resumed_like_whole(parts, whole):
    a, b = params_of(whole), params_of(parts)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=RESUME_ATOL, err_msg=name)


def test_training_stops_and_resumes_on_cuda(tmp_path, small_shapes_h5):
    config = from_dict(TINY)
    whole = str(tmp_path / "whole")
    result = run_training(config, small_shapes_h5, whole, CUDA, compile=False, echo=lambda s: None)
    assert result["epochs_done"] == 2
    rows = read_metrics(os.path.join(whole, "metrics.jsonl"))
    assert [r["device"] for r in rows] == ["cuda", "cuda"] and np.isfinite(rows[-1]["train_cost"])
    parts = str(tmp_path / "parts")
    assert run_training(config, small_shapes_h5, parts, CUDA, compile=False, max_steps=4,
                        echo=lambda s: None)["stopped"]
    state = torch.load(os.path.join(parts, "checkpoint.pt"), weights_only=True)
    assert state["device_type"] == "cuda" and (state["epoch"], state["step"]) == (0, 4)
    run_training(config, small_shapes_h5, parts, CUDA, resume=True, echo=lambda s: None)
    assert_resumed_like_whole(parts, whole)
    # publish's replay of the last validation draws the run's own CUDA noise
    last = rows[-1]
    replay = recompute_validation(config, params_of(whole), small_shapes_h5, last["epoch"], last["device"])
    np.testing.assert_allclose(replay, last["valid_denoising_cost"], rtol=1e-5)


def test_a_compiled_step_runs_as_cuda_graphs_and_resumes(tmp_path, small_shapes_h5):
    config = from_dict(TINY)
    whole = Trainer(config, small_shapes_h5, str(tmp_path / "whole"), CUDA, compile=True, echo=lambda s: None)
    assert whole.step_fn.cuda_graphs and whole.optimizer.fused
    assert whole.run()["epochs_done"] == 2
    parts = str(tmp_path / "parts")
    run_training(config, small_shapes_h5, parts, CUDA, compile=True, max_steps=7, echo=lambda s: None)
    assert torch.load(os.path.join(parts, "checkpoint.pt"), weights_only=True)["fused_adam"] is True
    run_training(config, small_shapes_h5, parts, CUDA, resume=True, echo=lambda s: None)
    assert_resumed_like_whole(parts, str(tmp_path / "whole"))
    eager = str(tmp_path / "eager")
    run_training(config, small_shapes_h5, eager, CUDA, compile=False, echo=lambda s: None)
    # compiled and eager round differently, and train the same: the same costs to rounding
    for compiled, plain in zip(read_metrics(os.path.join(tmp_path, "whole", "metrics.jsonl")),
                               read_metrics(os.path.join(eager, "metrics.jsonl"))):
        assert compiled["compiled"] and not plain["compiled"]
        np.testing.assert_allclose(compiled["train_cost"], plain["train_cost"], rtol=1e-3)
        np.testing.assert_allclose(compiled["valid_denoising_cost"], plain["valid_denoising_cost"], rtol=1e-3)


def test_an_epoch_waits_for_the_device_only_at_its_end(tmp_path, small_shapes_h5, monkeypatch):
    """No step of an epoch (batches, noise, forward, backward, Adam, the sums, the NaN checks every
    LOG_EVERY steps) synchronises with the GPU: torch's sync debug mode raises on any that does. The
    end-of-epoch check, the one wait, is left out here."""
    from tagger_torch.training import trainer as trainer_module
    monkeypatch.setattr(trainer_module, "LOG_EVERY", 2)
    trainer = Trainer(from_dict(TINY), small_shapes_h5, str(tmp_path / "run"), CUDA, compile=False,
                      echo=lambda s: None)
    trainer.train_epoch(lambda: trainer.step >= 2, progress=False)  # first steps: allocations, library set-up
    trainer.check_finite = lambda *args, **kwargs: None
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        assert trainer.train_epoch(lambda: False, progress=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.step == trainer.steps_per_epoch


def test_evaluate_on_cuda(trained_run, small_shapes_h5, tmp_path):
    scores = []
    for n in range(2):
        out = tmp_path / f"scores{n}.json"
        result = invoke("evaluate", "--run", trained_run, "--hdf5", small_shapes_h5, "--iterations", 3,
                        "--device", "cuda", "--out", out)
        assert result.exit_code == 0, result.output
        scores.append(json.loads(out.read_text()))
    assert scores[0]["denoising_cost"] == scores[1]["denoising_cost"]  # the same noise from the same seed
    assert all(np.isfinite(scores[0]["denoising_cost"])) and all(0 <= a <= 1 for a in scores[0]["ami"])


def test_segment_draws_do_not_depend_on_the_batch_or_the_device():
    """m0 comes from a CPU generator on every device: a LayerNorm model's masks on CUDA are the same in
    batches of 1, 3 and 5, and the CPU's."""
    config = from_dict({**TINY, "norm": "layer"})
    params = perturbed_params(config, seed=0, scale=0.3)
    x = (np.random.default_rng(0).random((5, config.input_size)) < 0.3).astype(np.float32)
    cpu = segment_examples(Tagger(config, params=params), x, 3, 2, seed=4)
    model = Tagger(config, params=params).to(CUDA)
    for batch_size in (1, 3, 5):
        got = segment_examples(model, x, 3, 2, seed=4, batch_size=batch_size)
        np.testing.assert_allclose(got["m"][0], cpu["m"][0], rtol=1e-6, atol=1e-7)  # m0: the same draws
        np.testing.assert_allclose(got["m"], cpu["m"], atol=1e-5)


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_bf16_and_tf32_forwards_are_close_to_fp32(precision):
    """The denoising cost of one forward pass within BF16_COST of fp32 (both round the products'
    operands: bf16 to 8 significant bits, tf32 to 11); fp32 itself switches TF32 off."""
    config = from_dict({**TINY, "encoder_proj": [200, 100, 50]})
    model = Tagger(config, params=perturbed_params(config, seed=1, scale=0.3)).to(CUDA)
    x = (torch.rand(50, config.input_size, generator=torch.Generator().manual_seed(0)) < 0.3).float().to(CUDA)
    noise = dict(corruption=(torch.rand(50, config.input_size, device=CUDA) < 0.2).float(),
                 m_init=torch.randn(config.n_groups, 50, config.input_size, device=CUDA))
    with torch.no_grad():
        with autocast("fp32", CUDA):
            assert not torch.backends.cuda.matmul.allow_tf32
            fp32 = model(x, **noise).denoising_cost
        with autocast(precision, CUDA):
            assert torch.backends.cuda.matmul.allow_tf32 == (precision == "tf32")
            low = model(x, **noise).denoising_cost
        autocast("fp32", CUDA)  # TF32 off again for the tests after this one
    np.testing.assert_allclose(low.cpu().numpy(), fp32.cpu().numpy(), rtol=BF16_COST.rtol, atol=BF16_COST.atol)


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_bench_on_cuda(precision):
    result = invoke("bench", "--preset", "shapes-demo", "--device", "cuda", "--precision", precision,
                    "--steps", 3, "--warmup", 1, "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert r["precision"] == precision and r["images_per_s"] > 0 and not r["cuda_graphs"]

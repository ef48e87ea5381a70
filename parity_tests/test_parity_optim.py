"""The optimiser: BlocksAdam (torch; its foreach form and its fused, compiled form) vs the reference's
adam_step, three steps."""
import numpy as np
import pytest
import torch

import tagger_reference as reference
from tagger_torch.optim import BlocksAdam

from .cases import CASES, perturbed_params
from .compare import assert_close
from .tolerances import adam_tolerance

CONFIG = CASES[-1].config  # continuous, 3 hidden layers and a class head: every kind of parameter
LR, STEPS = 0.001, 3


def adam_pair(dtype: torch.dtype, device: str, fused: bool = False):
    """(reference params, torch params) after STEPS steps from the same start and gradients."""
    rng = np.random.RandomState(21)
    start = perturbed_params(CONFIG, seed=21)
    grads = [{k: np.float32(rng.randn(*v.shape) * 10.0 ** rng.uniform(-4, 1)) for k, v in start.items()}
             for _ in range(STEPS)]
    ref, state = dict(start), None
    for g in grads:
        ref, state = reference.adam_step(ref, g, state, lr=LR)
    params = {k: torch.nn.Parameter(torch.tensor(v, dtype=dtype, device=device)) for k, v in start.items()}
    opt = BlocksAdam(params.values(), lr=LR, fused=fused)
    for g in grads:
        for k, p in params.items():
            p.grad = torch.tensor(g[k], dtype=dtype, device=device)
        opt.step()
    return ref, {k: p.detach().double().cpu().numpy() for k, p in params.items()}


def adam_errors(dtype: torch.dtype, device: str, fused: bool = False) -> float:
    ref, got = adam_pair(dtype, device, fused)
    return max(float(np.abs(got[k] - ref[k]).max()) for k in ref)


def check_adam(dtype: torch.dtype, device: str, fused: bool = False):
    ref, got = adam_pair(dtype, device, fused)
    tol = adam_tolerance(str(dtype).replace("torch.", ""))
    for name in ref:
        assert_close(got[name], ref[name], tol, quantity=name, where=f"step {STEPS}",
                     context=f"BlocksAdam{' fused' if fused else ''} vs adam_step [{device} {dtype}]")


# the fused form compiles once per dtype (~10 s on 2 CPU cores)
@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_blocks_adam_cpu(dtype, fused):
    check_adam(dtype, "cpu", fused)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available() is False)")
@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_blocks_adam_cuda(dtype, fused):
    check_adam(dtype, "cuda", fused)

"""The forward pass: every trace array of every iteration, torch vs the float64 NumPy reference."""
from functools import lru_cache

import pytest
import torch

from .cases import CASES, build, run_reference, run_torch
from .compare import compare_trace

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason="no CUDA device (torch.cuda.is_available() is False)")


@lru_cache(maxsize=None)
def reference_run(case):
    inputs = build(case)
    return inputs, run_reference(case, inputs)


def check(case, dtype: str, device: str):
    inputs, ref = reference_run(case)
    compare_trace(case, inputs, ref, run_torch(case, inputs, getattr(torch, dtype), device), device, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_forward_cpu(case, dtype):
    check(case, dtype, "cpu")


@pytest.mark.cuda
@requires_cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_forward_cuda(case, dtype):
    check(case, dtype, "cuda")


def test_a_wrong_equation_is_caught(monkeypatch):
    """The suite is not vacuous: a port that "fixes" the v^2 quirk of L(m) (SPEC 4a) fails, and the
    message names the quantity and the iteration."""
    import tagger_torch.tagger as port

    def fixed_group_likelihood(x_tilde, z, config, v):
        n = config.input_noise ** 2 + v  # v instead of the release's v^2
        return torch.softmax(-(0.5 * torch.log(n) + (z - x_tilde) ** 2 / (2 * n)), dim=0)

    case = next(c for c in CASES if c.config.input_type == "continuous")
    inputs, ref = reference_run(case)
    monkeypatch.setattr(port, "group_likelihood", fixed_group_likelihood)
    got = run_torch(case, inputs, torch.float32, "cpu")
    # at iteration 0 every z_k equals z0, so L(m) is uniform whatever n is: the error shows at iteration 1
    with pytest.raises(AssertionError, match=r"m_lh at iteration 1: max abs err"):
        compare_trace(case, inputs, ref, got, "cpu", "float32")

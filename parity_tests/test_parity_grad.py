"""Gradients: torch autograd of the training cost vs central finite differences of the reference.

float64, tiny models, every parameter (a1..a10, v, c2 included), perturbed away from the release init.
"""
from functools import lru_cache

import numpy as np
import pytest
import torch

import tagger_reference as reference
from tagger_reference.gradcheck import numerical_grad
from tagger_torch.model import Tagger
from tagger_torch.norms import NORMS

from .cases import CASES, Case, build, no_tf32, tiny_config
from .compare import assert_close
from .tolerances import GRADIENT

_TINY = dict(in_dim=(2, 3), encoder_proj=(5, 4, 3), n_groups=2, n_iterations=2)
_TINY_CLASS = dict(_TINY, encoder_proj=(5, 4, 4), input_type="continuous", zhat_init_value=0.5,
                   class_cost_x=0.5)
GRAD_CASES = [
    Case("grad-binary-batch", tiny_config(**_TINY), batch=4, seed=11),
    Case("grad-continuous-layer-2obj", tiny_config(**dict(_TINY_CLASS, norm="layer", objects_per_sample=2,
                                                      n_groups=3)), batch=4, labels=True, seed=12),
    Case("grad-continuous-batch-1obj-clean", tiny_config(**_TINY_CLASS), batch=4, labels=True,
         corrupted=False, seed=13),
    Case("grad-binary-layer-groups", tiny_config(**dict(_TINY, norm="layer-groups", n_groups=3)), batch=4, seed=14),
    Case("grad-continuous-layer-gain-1obj", tiny_config(**dict(_TINY_CLASS, norm="layer-gain")), batch=4,
         labels=True, seed=15),
    Case("grad-binary-layer-ladder", tiny_config(**dict(_TINY, norm="layer-ladder")), batch=4, seed=16),
    Case("grad-continuous-layer-tagger-1obj", tiny_config(**dict(_TINY_CLASS, norm="layer-tagger")), batch=4,
         labels=True, seed=17),
]


@lru_cache(maxsize=None)
def finite_differences(case: Case):
    inputs = build(case)

    def cost(params):
        return reference.training_cost(params, case.config, inputs.x, inputs.m_init, inputs.corruption,
                                       inputs.labels)

    return inputs, numerical_grad(cost, inputs.params)


def autograd_gradients(case: Case, device: str):
    """d training cost / d parameter by torch autograd, float64 on `device`, as numpy arrays."""
    inputs, _ = finite_differences(case)
    model = Tagger(case.config, params=inputs.params, dtype=torch.float64, device=device)
    with no_tf32():
        out = model(torch.from_numpy(inputs.x), corrupt=False,
                    corruption=None if inputs.corruption is None else torch.from_numpy(inputs.corruption),
                    m_init=torch.from_numpy(inputs.m_init),
                    labels=None if inputs.labels is None else torch.from_numpy(inputs.labels))
        out.cost.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{case.name}: no gradient reaches {', '.join(missing)}"
    return {name: p.grad.cpu().numpy() for name, p in model.named_parameters()}


def gradient_errors(case: Case, device: str):
    """(max abs error, max abs error / (|g_fd| + 1e-3)) over every element of every parameter."""
    expected = finite_differences(case)[1]
    got = autograd_gradients(case, device)
    diffs = {name: np.abs(got[name] - expected[name]) for name in got}
    return (max(float(d.max()) for d in diffs.values()),
            max(float((d / (np.abs(expected[name]) + 1e-3)).max()) for name, d in diffs.items()))


def check_gradients(case: Case, device: str):
    expected = finite_differences(case)[1]
    got = autograd_gradients(case, device)
    assert set(got) == set(expected)
    for name in got:  # autograd vs finite differences
        assert_close(got[name], expected[name], GRADIENT, quantity=f"d cost / d {name}",
                     context=f"{case.name} [{device}]")


def test_every_norm_is_compared():
    """Each norm of tagger_torch.norms has a forward case (cases.CASES) and a gradient case here."""
    assert sorted({case.config.norm for case in CASES}) == sorted(NORMS)
    assert sorted({case.config.norm for case in GRAD_CASES}) == sorted(NORMS)


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.name)
def test_gradients_cpu(case):
    check_gradients(case, "cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available() is False)")
@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.name)
def test_gradients_cuda(case):
    check_gradients(case, "cuda")

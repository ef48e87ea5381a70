"""The release's optimiser: Adam as Blocks 0.2 implements it (SPEC 7), with torch's foreach ops.

Twin of `tagger_reference.optim.adam_step` (a functional step on dicts of arrays): here the rule is
`adam_update_`, in place on lists of tensors, inside the `torch.optim.Optimizer` `BlocksAdam`.

Blocks' rule, with its own hyper-parameter names (beta1 = 0.1 and beta2 = 0.001 are *one minus* the
usual betas), at step t = 1, 2, ...:

    lr_t   = lr sqrt(1 - (1 - beta2)^t) / (1 - (1 - beta1)^t)
    beta_t = 1 - (1 - beta1) decay^(t - 1)                  (the weight of the new gradient)
    mean   = beta_t g + (1 - beta_t) mean
    var    = beta2 g^2 + (1 - beta2) var                    (mean, var start at 0)
    param -= lr_t mean / (sqrt(var) + epsilon)

SPEC 7 writes the same with beta = 0.9 (1 - 1e-8)^(t-1) = 1 - beta_t.

Two forms of the same rule: `adam_update_` (the default: torch's multi-tensor `_foreach` kernels,
six passes over the state) and `fused_adam_update_` (`BlocksAdam(fused=True)`: one torch.compile'd
pass that reads each parameter, gradient, mean and variance once). Both are tested against the
reference's `adam_step` (parity_tests/test_parity_optim.py). They round differently, so a run keeps
its form across resumes (training/trainer.py).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor


def _step_scalars(t: int, lr: float, beta1: float, beta2: float, decay_factor: float) -> Tuple[float, float]:
    """(lr_t, beta_t) of step t (1-based), in float64 as the release computes them."""
    # SPEC 7: lr_t = lr sqrt(1 - 0.999^t) / (1 - 0.9^t)
    lr_t = lr * math.sqrt(1 - (1 - beta2) ** t) / (1 - (1 - beta1) ** t)
    # beta_t = 1 - 0.9 (1 - 1e-8)^(t-1)
    beta_t = 1 - (1 - beta1) * decay_factor ** (t - 1)
    return lr_t, beta_t


def adam_update_(params: List[Tensor], grads: List[Tensor], means: List[Tensor], variances: List[Tensor],
              t: int, lr: float, beta1: float = 0.1, beta2: float = 0.001, epsilon: float = 1e-8,
              decay_factor: float = 1 - 1e-8) -> None:
    """One Blocks-Adam step at step number t (1-based), in place on params, means and variances."""
    lr_t, beta_t = _step_scalars(t, lr, beta1, beta2, decay_factor)
    # mean <- mean + beta_t (g - mean) = beta_t g + (1 - beta_t) mean
    torch._foreach_lerp_(means, grads, beta_t)
    # var <- 0.999 var + 0.001 g^2
    torch._foreach_mul_(variances, 1 - beta2)
    torch._foreach_addcmul_(variances, grads, grads, value=beta2)
    # param <- param - lr_t mean / (sqrt(var) + eps)
    denom = torch._foreach_sqrt(variances)
    torch._foreach_add_(denom, epsilon)
    torch._foreach_addcdiv_(params, means, denom, value=-lr_t)


def _fused_pass_(params: List[Tensor], grads: List[Tensor], means: List[Tensor], variances: List[Tensor],
                 scalars: Tensor) -> None:
    """The rule of `adam_update_` element by element, each tensor in one pass (compiled by
    `fused_adam_update_`); scalars: (beta_t, 1 - beta2, beta2, epsilon, -lr_t) in the parameters' dtype."""
    beta_t, keep, beta2, epsilon, minus_lr_t = scalars.unbind()
    for p, g, m, v in zip(params, grads, means, variances):
        # 0-d tensors (c2, v) as views of shape (1,): inductor (torch 2.13, CPU) drops in-place updates
        # of 0-d float64 tensors
        p, g, m, v = (t.view(1) if t.dim() == 0 else t for t in (p, g, m, v))
        # mean <- mean + beta_t (g - mean)
        m.copy_(m + beta_t * (g - m))
        # var <- (1 - beta2) var + beta2 g^2
        v.copy_(keep * v + beta2 * g * g)
        # param <- param - lr_t mean / (sqrt(var) + eps)
        p.add_(minus_lr_t * m / (v.sqrt() + epsilon))


@functools.lru_cache(maxsize=None)
def _compiled_fused_pass() -> Callable:
    return torch.compile(_fused_pass_, dynamic=False)


def fused_adam_update_(params: List[Tensor], grads: List[Tensor], means: List[Tensor], variances: List[Tensor],
                       t: int, lr: float, beta1: float = 0.1, beta2: float = 0.001, epsilon: float = 1e-8,
                       decay_factor: float = 1 - 1e-8) -> None:
    """`adam_update_` as one compiled pass per tensor (`_fused_pass_`; the first call compiles it).
    The step's scalars reach the kernels as one small tensor, so a new step needs no recompilation."""
    lr_t, beta_t = _step_scalars(t, lr, beta1, beta2, decay_factor)
    device = params[0].device
    scalars = torch.tensor([beta_t, 1 - beta2, beta2, epsilon, -lr_t], dtype=params[0].dtype,
                           pin_memory=device.type == "cuda")  # pinned: copied without a wait
    _compiled_fused_pass()(params, grads, means, variances, scalars.to(device, non_blocking=True))


class BlocksAdam(torch.optim.Optimizer):
    """Adam exactly as the release trains (Blocks 0.2 `Adam`); constant lr, no weight decay.

    State: per parameter `mean` and `variance`; per group the step counter `time` (saved by
    `state_dict()`, restored by `load_state_dict()`). Parameters whose .grad is None are skipped.
    fused: the update as one compiled pass per tensor (`fused_adam_update_`), else torch's foreach
    kernels (`adam_update_`). The lists of parameters and states are built once and kept while the
    same parameters have gradients.
    """

    def __init__(self, params, lr: float = 0.002, beta1: float = 0.1, beta2: float = 0.001,
                 epsilon: float = 1e-8, decay_factor: float = 1 - 1e-8, fused: bool = False):
        if lr <= 0:
            raise ValueError(f"lr must be > 0 (got {lr})")
        self.fused = fused
        self._lists: Dict[int, tuple] = {}  # group index -> (which have grads, params, means, variances)
        defaults = dict(lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon, decay_factor=decay_factor,
                        time=0)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self._lists.clear()

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._lists.clear()  # new state tensors

    def _state_lists(self, index: int, group: dict) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """The group's parameters that have gradients, with their means and variances (made at zero
        on first use); rebuilt only when the parameters with gradients change."""
        with_grad = tuple(p.grad is not None for p in group["params"])
        cached = self._lists.get(index)
        if cached is None or cached[0] != with_grad:
            params = [p for p, has in zip(group["params"], with_grad) if has]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("BlocksAdam does not support sparse gradients")
            for p in params:
                if not self.state[p]:
                    self.state[p]["mean"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    self.state[p]["variance"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            cached = self._lists[index] = (with_grad, params, [self.state[p]["mean"] for p in params],
                                           [self.state[p]["variance"] for p in params])
        return cached[1:]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        update = fused_adam_update_ if self.fused else adam_update_
        for index, group in enumerate(self.param_groups):
            params, means, variances = self._state_lists(index, group)
            if not params:
                continue
            group["time"] += 1
            update(params, [p.grad for p in params], means, variances, group["time"], group["lr"], group["beta1"],
                   group["beta2"], group["epsilon"], group["decay_factor"])
        return loss

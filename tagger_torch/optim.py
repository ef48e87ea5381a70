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
"""
from __future__ import annotations

import math
from typing import List

import torch
from torch import Tensor


def adam_update_(params: List[Tensor], grads: List[Tensor], means: List[Tensor], variances: List[Tensor],
              t: int, lr: float, beta1: float = 0.1, beta2: float = 0.001, epsilon: float = 1e-8,
              decay_factor: float = 1 - 1e-8) -> None:
    """One Blocks-Adam step at step number t (1-based), in place on params, means and variances."""
    # SPEC 7: lr_t = lr sqrt(1 - 0.999^t) / (1 - 0.9^t)
    lr_t = lr * math.sqrt(1 - (1 - beta2) ** t) / (1 - (1 - beta1) ** t)
    # beta_t = 1 - 0.9 (1 - 1e-8)^(t-1);  mean <- mean + beta_t (g - mean) = beta_t g + (1 - beta_t) mean
    beta_t = 1 - (1 - beta1) * decay_factor ** (t - 1)
    torch._foreach_lerp_(means, grads, beta_t)
    # var <- 0.999 var + 0.001 g^2
    torch._foreach_mul_(variances, 1 - beta2)
    torch._foreach_addcmul_(variances, grads, grads, value=beta2)
    # param <- param - lr_t mean / (sqrt(var) + eps)
    denom = torch._foreach_sqrt(variances)
    torch._foreach_add_(denom, epsilon)
    torch._foreach_addcdiv_(params, means, denom, value=-lr_t)


class BlocksAdam(torch.optim.Optimizer):
    """Adam exactly as the release trains (Blocks 0.2 `Adam`); constant lr, no weight decay.

    State: per parameter `mean` and `variance`; per group the step counter `time` (saved by
    `state_dict()`, restored by `load_state_dict()`). Parameters whose .grad is None are skipped.
    """

    def __init__(self, params, lr: float = 0.002, beta1: float = 0.1, beta2: float = 0.001,
                 epsilon: float = 1e-8, decay_factor: float = 1 - 1e-8):
        if lr <= 0:
            raise ValueError(f"lr must be > 0 (got {lr})")
        defaults = dict(lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon, decay_factor=decay_factor,
                        time=0)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, means, variances = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("BlocksAdam does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["mean"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["variance"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                means.append(state["mean"])
                variances.append(state["variance"])
            if not params:
                continue
            group["time"] += 1
            adam_update_(params, grads, means, variances, group["time"], group["lr"], group["beta1"],
                      group["beta2"], group["epsilon"], group["decay_factor"])
        return loss

"""One training step, for any model of the registry, and the sums of its statistics over an epoch."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch

from ..distributed import wrap
from ..models import Batch
from ..precision import autocast


def train_step(model, optimizer, batch: Batch, generator: torch.Generator,
               forward: Optional[torch.nn.Module] = None) -> Dict[str, torch.Tensor]:
    """One step: the model's cost of `batch` (`model.batch_cost`), backward, the optimizer's update.

    forward: the module the passes run through (the model under DistributedDataParallel or
    torch.compile); default the model. Returns the model's detached statistics.
    """
    optimizer.zero_grad(set_to_none=True)
    cost, stats = model.batch_cost(batch, generator, forward)
    cost.backward()
    optimizer.step()
    return stats


def make_train_step(model, optimizer, precision: str = "fp32", compile: bool = False) -> Callable:
    """step(batch, generator) -> stats: `train_step` under a precision policy.

    precision: 'fp32' (the parity-tested path), or 'bf16'/'tf32' (tagger_torch.precision);
    compile: torch.compile the model's forward (and, through AOTAutograd, its backward; Tagger's
    noise draws stay eager at graph breaks, so a compiled step draws what an eager one does). Under
    torchrun the model runs inside DistributedDataParallel, which averages the gradients over ranks.
    """
    device = next(model.parameters()).device
    forward = wrap(model)
    if compile:
        forward = torch.compile(forward)

    def step(batch: Batch, generator: torch.Generator) -> Dict[str, torch.Tensor]:
        with autocast(precision, device):
            return train_step(model, optimizer, batch, generator, forward)

    return step


class Accumulator:
    """Sums of the per-step statistics of one epoch, on the device (no sync per step)."""

    def __init__(self, state: Optional[dict] = None):
        self.sums: Dict[str, torch.Tensor] = dict(state["sums"]) if state else {}
        self.steps = state["steps"] if state else 0
        self.seconds = state["seconds"] if state else 0.0

    def add(self, stats: Dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            value = value.float()
            if key in self.sums:
                self.sums[key] = self.sums[key].to(value.device) + value
            else:
                self.sums[key] = value.clone()
        self.steps += 1

    def means(self) -> Dict[str, object]:
        """Epoch means: floats, or lists (one per iteration) for per-iteration statistics."""
        return {key: (value / max(self.steps, 1)).cpu().tolist() for key, value in self.sums.items()}

    def finite(self) -> bool:
        return all(bool(torch.isfinite(v).all()) for v in self.sums.values())

    def state(self) -> dict:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "steps": self.steps,
                "seconds": self.seconds}

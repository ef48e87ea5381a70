"""One training step, for any model of the registry, and the sums of its statistics over an epoch."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch

from ..distributed import world_size, wrap
from ..models import Batch
from ..precision import autocast, compile_mode
from ..weight_grads import inductor_options


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


def make_train_step(model, optimizer, precision: str = "fp32", compile: bool = False,
                    cuda_graphs: Optional[bool] = None) -> Callable:
    """step(batch, generator) -> stats: `train_step` under a precision policy.

    precision: 'fp32' (the parity-tested path), or 'bf16'/'tf32' (tagger_torch.precision);
    compile: torch.compile the model's forward (and, through AOTAutograd, its backward; the model
    draws its noise outside the forward, so a compiled step draws what an eager one does), in the
    mode `precision.compile_mode(device, cuda_graphs)` picks: CUDA graphs on one CUDA device; the
    backward sums a shared weight's gradient over the iterations in one product (weight_grads). Under
    torchrun the model runs inside DistributedDataParallel, which averages the gradients over ranks.
    """
    device = next(model.parameters()).device
    forward = wrap(model)
    graphs = compile and compile_mode(device, cuda_graphs, world_size()) == "reduce-overhead"
    if compile:
        # torch.compile takes a mode or options, not both: CUDA graphs as the mode's option
        options = {"triton.cudagraphs": True} if graphs else {}
        forward = torch.compile(forward, options={**options, **inductor_options()} or None)

    def step(batch: Batch, generator: torch.Generator) -> Dict[str, torch.Tensor]:
        if graphs:  # a new step: the graphs' outputs of the last one may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        with autocast(precision, device):
            stats = train_step(model, optimizer, batch, generator, forward)
        # a CUDA graph's outputs live in its memory, which the next replay overwrites
        return {key: value.clone() for key, value in stats.items()} if graphs else stats

    step.cuda_graphs = graphs
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

    def snapshot(self) -> torch.Tensor:
        """(2,) on the device, without waiting for it: 1 when every sum is finite (else 0), the cost's sum."""
        finite = torch.stack([torch.isfinite(v).all() for v in self.sums.values()]).all()
        return torch.stack([finite.to(self.sums["cost"].dtype), self.sums["cost"]])

    def finite(self) -> bool:
        """Whether every sum is finite (waits for the device)."""
        return not self.sums or bool(self.snapshot()[0])

    def state(self) -> dict:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "steps": self.steps,
                "seconds": self.seconds}


class HostCopy:
    """A device tensor's values copied to the host without waiting for the device (CUDA: into pinned
    memory, with an event); `values()` then waits for that copy alone. On the CPU: the values at once."""

    def __init__(self, tensor: torch.Tensor):
        self.event = None
        if tensor.device.type == "cuda":
            self.host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self.host.copy_(tensor, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.host = tensor.detach()

    def values(self) -> list:
        if self.event is not None:
            self.event.synchronize()
        return self.host.tolist()

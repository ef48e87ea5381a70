"""Training on several processes under `torchrun` with DistributedDataParallel (docs/speed.md).

`torchrun --nproc-per-node N $(which tagger-torch) train ...` starts N copies of the command; each
finds its place in the job from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK). Each rank
trains on its own batches of `batch_size` (BatchNorm statistics stay per batch, as in the release),
DDP averages the gradients, and every rank applies the same Adam update, so the replicas stay equal.
Rank 0 alone writes the run directory. Without torchrun (WORLD_SIZE unset or 1) nothing changes.
"""
from __future__ import annotations

import os
import sys
from typing import Any, List, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .errors import TaggerError, first_line

# A gloo group beside a CUDA job's nccl one, for the flags the ranks agree on (stop, NaN): host tensors,
# so agreeing waits for no device. None: the job's own group (gloo on the CPU) or no job.
_HOST_GROUP: Optional[dist.ProcessGroup] = None


def setup(device: torch.device) -> torch.device:
    """Join the torchrun job when there is one (gloo on CPU, nccl on CUDA); returns this rank's device."""
    global _HOST_GROUP
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 or dist.is_initialized():
        return device
    try:
        if device.type == "cuda":
            local_rank, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
            if local_rank >= count:
                raise TaggerError(f"torchrun started more processes on this machine than it has GPUs (local rank "
                                  f"{local_rank}, {count} CUDA device{'s' if count != 1 else ''}): use "
                                  f"--nproc-per-node {count} or fewer, or --device cpu")
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        _HOST_GROUP = dist.new_group(backend="gloo") if device.type == "cuda" else None
    except (RuntimeError, ValueError) as e:
        raise TaggerError(f"cannot join the torchrun job (WORLD_SIZE={world}): {first_line(e)}") from None
    return device


def teardown() -> bool:
    """Leave the job; True when there was one to leave."""
    global _HOST_GROUP
    if not dist.is_initialized():
        return False
    dist.destroy_process_group()
    _HOST_GROUP = None
    return True


def exit_now(code: int) -> None:
    """End a process that has left a torchrun job with status `code`, skipping the interpreter's teardown.

    A process that ran DDP on gloo aborts at exit about one time in three with torch 2.13
    ("terminate called without an active exception", SIGABRT, and torchrun fails the job) after
    all Python code has run: a 10-line script with DDP over one Linear layer shows it in 9 of 30
    runs, with or without destroy_process_group, and in 0 of 30 when it ends with os._exit.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0, the process that writes files and prints."""
    return rank() == 0


def rank_seed(seed: int, rank_: int) -> int:
    """Seed of a rank's noise generator: `seed` itself on rank 0 (a single process is rank 0)."""
    if rank_ == 0:
        return seed
    return int(np.random.SeedSequence([seed, 3, rank_]).generate_state(1)[0])


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is True on any (a collective of the host group: every rank must
    call it; it waits for the other ranks, never for a device)."""
    if world_size() == 1:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_HOST_GROUP)
    return bool(t.item())


class StopVote:
    """Whether any rank wants to stop, agreed without waiting at each step for a device or for the
    other ranks. Each call posts this rank's flag to an all-reduce of the host group and returns the
    outcome of the previous call's: every rank gets the same answer at the same call, one call after
    a flag was raised. In a single process: the flag itself, at once."""

    def __init__(self):
        self._pending = None  # (work, tensor) of the last call's all-reduce

    def __call__(self, flag: bool) -> bool:
        if world_size() == 1:
            return flag
        posted = torch.tensor([1 if flag else 0], dtype=torch.int32)
        work = dist.all_reduce(posted, op=dist.ReduceOp.MAX, group=_HOST_GROUP, async_op=True)
        previous, self._pending = self._pending, (work, posted)
        if previous is None:
            return False
        previous[0].wait()
        return bool(previous[1].item())

    def close(self) -> None:
        """Wait for the last call's all-reduce (before the job ends); also on leaving a `with` block."""
        if self._pending is not None:
            self._pending[0].wait()
            self._pending = None

    def __enter__(self) -> "StopVote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def gather(obj: Any) -> List[Any]:
    """Every rank's `obj`, in rank order, on every rank (a collective)."""
    if world_size() == 1:
        return [obj]
    out: List[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model under DistributedDataParallel when in a job, else the model itself."""
    if world_size() == 1:
        return model
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   )


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over the ranks (a collective); `t` itself in a single process."""
    if world_size() == 1:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / world_size()

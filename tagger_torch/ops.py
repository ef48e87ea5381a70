"""Elementwise pieces and the normalisation, named as in the NumPy twin (`tagger_reference.ops`).

Every normalisation of the model goes through `normalize`, and every matrix product through
`project`, which casts its result back to the weights' dtype: under `torch.autocast(dtype=bfloat16)`
only the products run in bf16, while normalisation, softmax, log/exp and the costs stay float32.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .constants import CLIP_EPS, NORM_EPS


def pos(a: Tensor) -> Tensor:
    """SPEC 2: the variance map pos(a) = a + sqrt(a^2 + 1) > 0, as 1/(sqrt(a^2+1) - a) for a <= 0."""
    root = torch.sqrt(a * a + 1)
    return torch.where(a <= 0, 1 / (root - a), a + root)


def soft_clip(a: Tensor, eps: float = CLIP_EPS) -> Tensor:
    """soft_clip(a) = a (1 - 2e) + e: maps [0, 1] into [e, 1 - e] (release nn.soft_clip)."""
    return a * (1 - 2 * eps) + eps


def binary_cross_entropy(c: Tensor, target: Tensor) -> Tensor:
    """-(t log c + (1 - t) log(1 - c)), elementwise (Theano's binary_crossentropy)."""
    return -(target * torch.log(c) + (1 - target) * torch.log(1 - c))


def normalize(a: Tensor, statistics: str, n_groups: Optional[int] = None) -> Tensor:
    """(a - mean) / sqrt(var + 1e-10) with the biased variance of the values `statistics` pools over
    (tagger_torch.norms): SPEC "BN over (K,B)"/"BN over rows" for 'batch', SPEC 8 for 'layer'.

    a: (N, H), N = K*B rows in group-major order (row k*B + b is group k of example b). 'batch': per unit
    over the N rows of this minibatch; 'layer': per row over its H units; 'layer-groups': per example
    over its K rows and their units (n_groups = K). No learned terms, no running averages.
    """
    if statistics == "layer-groups":
        if n_groups is None:
            raise ValueError("normalize(..., 'layer-groups') needs n_groups, the K groups stacked in the rows")
        N, H = a.shape
        # (N, H) -> (K, B, H): statistics over the K groups and the H units of each example b
        return _standardize(a.reshape(n_groups, N // n_groups, H), (0, 2)).reshape(N, H)
    return _standardize(a, 0 if statistics == "batch" else -1)


def _standardize(a: Tensor, dim) -> Tensor:
    """(a - mean) / sqrt(var + eps) over `dim`, biased variance."""
    # centred once, variance from the centred values: torch.var_mean over dim 0 is ~15x slower on CPU
    centred = a - a.mean(dim=dim, keepdim=True)
    var = (centred * centred).mean(dim=dim, keepdim=True)
    return centred / torch.sqrt(var + NORM_EPS)


def project(a: Tensor, W: Tensor) -> Tensor:
    """a @ W, cast back to W's dtype (float32 master weights under bf16 autocast). a: (N, in)."""
    return (a @ W).to(W.dtype)

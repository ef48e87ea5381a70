"""Costs (SPEC 6) in PyTorch, twins of `tagger_reference.costs`: the denoising cost of eq. 1 and the
classification head's probabilities, cost and error."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .constants import MASK_EPS
from .ops import binary_cross_entropy, soft_clip


def denoising_cost(x: Tensor, z: Tensor, m: Tensor, config, v: Optional[Tensor] = None) -> Tensor:
    """SPEC 6 [eq. 1, A1.8] C(x) = -log sum_k m_k q(x | z_k), the mean over (B, D) (a scalar).

    x: the clean input (B, D); z, m: (K, B, D) after an iteration; v: pos(v) (continuous only).
    """
    if config.input_type == "binary":
        # binary: BCE(soft_clip(sum_k m_k z_k), x)
        x_hat = (m * z).sum(dim=0)  # (B, D)
        return binary_cross_entropy(soft_clip(x_hat), x).mean()
    # continuous: -logsumexp_k[-0.5 (log v + (x - z_k)^2 / v) + log(m_k + 1e-5)] (v, not v^2; no 2 pi)
    log_p = -0.5 * (torch.log(v) + (x - z) ** 2 / v) + torch.log(m + MASK_EPS)  # (K, B, D)
    return -torch.logsumexp(log_p, dim=0).mean()


def class_probabilities(y: Tensor) -> Tensor:
    """SPEC 6 classification head: y (K, B, HL) -> P (B, HL - 1).

    The last unit is "no class"; the rest are normalised over groups *and* classes (a release quirk),
    then summed over groups.
    """
    pred = y[..., :-1]  # (K, B, C)
    pred = pred / pred.sum(dim=(0, 2), keepdim=True)
    return pred.sum(dim=0)


def classification_cost(P: Tensor, labels: Tensor) -> Tensor:
    """SPEC 6: mean cross-entropy -sum_c t_c log P_c; t = onehot(y) or (onehot(y1) + onehot(y2)) / 2.

    P: (B, C); labels: (B, M) int64, M = objects per sample (1 or 2).
    """
    log_p = torch.log(P.gather(1, labels))  # (B, M): -sum_c t_c log P_c = -mean_j log P[y_j]
    return -log_p.mean(dim=1).mean()


def classification_error(P: Tensor, labels: Tensor) -> Tensor:
    """SPEC 6 error in %. One object: argmax P != y. Two: if y1 == y2 wrong unless top-1 == y1, else
    1 - (matches between the top-2 predictions and {y1, y2}) / 2. Ties go to the lower class index.
    P: (B, C); labels: (B, M) int64, M = 1 or 2."""
    M = labels.shape[1]
    ranked = torch.sort(P, dim=1, descending=True, stable=True).indices[:, :M]  # (B, M) best first
    if M == 1:
        wrong = (ranked[:, 0] != labels[:, 0]).to(P.dtype)
    else:
        matches = (ranked[:, :, None] == labels[:, None, :]).sum(dim=(1, 2)).to(P.dtype)
        same = labels[:, 0] == labels[:, 1]
        wrong = torch.where(same, (ranked[:, 0] != labels[:, 0]).to(P.dtype), 1 - matches / M)
    return wrong.mean() * 100

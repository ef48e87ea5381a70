"""The FC MLP baseline of Table 2 (Greff et al. 2016, section 3.3): fully connected ReLU layers with
BatchNorm after each layer and a softmax output, trained on labels only (docs/baselines.md).

The paper's sizes: 2000-2000-2000 with 50 000 labels, 1000-1000 with 1000 labels (presets
`freq20-Nmnist-fc-mlp` and `freq20-Nmnist-fc-mlp-1k`).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple

import numpy as np
from torch import Tensor

from ..models import Product
from ..ops import project
from .common import Classifier, ClassifierConfig, batch_norm, init_weights


@dataclass(frozen=True)
class MLPConfig(ClassifierConfig):
    """The FC MLP: D -> hidden[0] -> ... -> hidden[-1] -> n_classes."""

    model: str = "fc-mlp"  # registry name
    hidden: Tuple[int, ...] = (2000, 2000, 2000)  # units of the hidden layers, bottom to top
    num_epochs: int = 100  # the most epochs of a run (`reproduce` may stop earlier, reproduce/plan.py)

    def _validate(self) -> None:
        super()._validate()
        self._check_widths("hidden")


def mlp_shapes(config: MLPConfig) -> "OrderedDict[str, Tuple[int, ...]]":
    """f_l_W (H_{l-1}, H_l), f_l_gamma, f_l_beta (H_l) for l = 1..L; H_0 = D, H_L = n_classes."""
    H = (config.input_size,) + tuple(config.hidden) + (config.n_classes,)
    shapes = OrderedDict()
    for l in range(1, len(H)):
        shapes[f"f_{l}_W"] = (H[l - 1], H[l])
        shapes[f"f_{l}_gamma"] = (H[l],)
        shapes[f"f_{l}_beta"] = (H[l],)
    return shapes


class MLP(Classifier):
    """MLP(config, seed=None, params=None, device=None): weights from `seed` (default config.seed)."""

    def __init__(self, config: MLPConfig, seed: Optional[int] = None,
                 params: Optional[Mapping[str, np.ndarray]] = None, device=None):
        shapes = mlp_shapes(config)
        initial = init_weights(shapes, config.seed if seed is None else seed) if params is None else None
        super().__init__(config, shapes, initial, params, device)
        self.n_layers = len(config.hidden) + 1

    def forward(self, x: Tensor) -> Tensor:
        """The logits (B, n_classes) of x (B, D): h_l = relu(gamma_l BN(h_{l-1} W_l) + beta_l), the top
        without the relu (its softmax is in the cost)."""
        h = self.images(x)  # (B, D)
        p = self._parameters
        for l in range(1, self.n_layers + 1):
            # a_l = gamma_l BN(h_{l-1} W_l) + beta_l                            (B, H_l)
            a = batch_norm(project(h, p[f"f_{l}_W"]), p[f"f_{l}_gamma"], p[f"f_{l}_beta"])
            h = a.relu() if l < self.n_layers else a
        return h

    def step_products(self, batch_size: int) -> List[Product]:
        """Each layer's (B, H_{l-1}) @ (H_{l-1}, H_l) on the labelled batch; the first one's input is the data."""
        weights = [shape for name, shape in self.shapes.items() if name.endswith("_W")]
        return [Product(batch_size, k, n, input_grad=l > 0) for l, (k, n) in enumerate(weights)]

    def extra_repr(self) -> str:
        return f"D={self.config.input_size}, hidden={self.config.hidden}, classes={self.config.n_classes}"

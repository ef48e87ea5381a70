"""The ConvNet baseline of Table 2 (Greff et al. 2016, section 3.3): All-CNN-C (Springenberg et al.
2014, Table 2 "Model C", the all-convolutional variant) without dropout, BatchNorm after each layer,
and a fully connected layer in place of the final global average pooling (docs/baselines.md).

On a 28x28x1 image (padding 1 for the 3x3 convolutions but the "valid" one):
    conv3x3-96, conv3x3-96, conv3x3-96 stride 2       28 -> 28 -> 28 -> 14
    conv3x3-192, conv3x3-192, conv3x3-192 stride 2    14 -> 14 -> 14 -> 7
    conv3x3-192 valid, conv1x1-192, conv1x1-10         7 -> 5 -> 5 -> 5
    fully connected 10*5*5 -> 10, softmax
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from ..errors import TaggerError
from ..models import Product
from ..ops import project
from .common import Classifier, ClassifierConfig, batch_norm, init_weights

# All-CNN-C's convolutions: (kernel, stride, padding, which width: 0 = channels[0], 1 = channels[1],
# 2 = n_classes)
ALL_CNN_C = ((3, 1, 1, 0), (3, 1, 1, 0), (3, 2, 1, 0),
             (3, 1, 1, 1), (3, 1, 1, 1), (3, 2, 1, 1),
             (3, 1, 0, 1), (1, 1, 0, 1), (1, 1, 0, 2))


@dataclass(frozen=True)
class ConvNetConfig(ClassifierConfig):
    """All-CNN-C with BatchNorm, no dropout, and a fully connected top."""

    model: str = "convnet"  # registry name
    channels: Tuple[int, ...] = (96, 192)  # widths of the first three and of the next five convolutions
    num_epochs: int = 100  # the most epochs of a run (`reproduce` may stop earlier, reproduce/plan.py)

    def _validate(self) -> None:
        super()._validate()
        self._check_widths("channels")
        if len(self.channels) != 2:
            self._bad("channels", "must give the two widths of All-CNN-C (96, 192)")
        if len(self.in_dim) != 3:
            self._bad("in_dim", "must be (channels, height, width) for the ConvNet")
        if min(conv_sizes(self)[-1][1:]) < 1:
            self._bad("in_dim", "is too small for All-CNN-C's strides and its valid 3x3 convolution")


def conv_sizes(config: ConvNetConfig) -> List[Tuple[int, int, int]]:
    """(channels, height, width) of the input and after each convolution of ALL_CNN_C."""
    c, h, w = config.in_dim
    sizes = [(c, h, w)]
    for k, s, pad, which in ALL_CNN_C:
        # out = floor((n + 2 pad - k) / s) + 1
        h, w = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
        c = config.channels[which] if which < 2 else config.n_classes
        sizes.append((c, h, w))
    return sizes


def convnet_shapes(config: ConvNetConfig) -> "OrderedDict[str, Tuple[int, ...]]":
    """conv_l_W (out, in, k, k), conv_l_gamma, conv_l_beta (out) for l = 1..9; fc_W (10*5*5, C),
    fc_gamma, fc_beta (C)."""
    sizes = conv_sizes(config)
    shapes = OrderedDict()
    for l, (k, _, _, _) in enumerate(ALL_CNN_C, start=1):
        shapes[f"conv_{l}_W"] = (sizes[l][0], sizes[l - 1][0], k, k)
        shapes[f"conv_{l}_gamma"] = (sizes[l][0],)
        shapes[f"conv_{l}_beta"] = (sizes[l][0],)
    shapes["fc_W"] = (int(np.prod(sizes[-1])), config.n_classes)
    shapes["fc_gamma"] = (config.n_classes,)
    shapes["fc_beta"] = (config.n_classes,)
    return shapes


class ConvNet(Classifier):
    """ConvNet(config, seed=None, params=None, device=None): weights from `seed` (default config.seed)."""

    def __init__(self, config: ConvNetConfig, seed: Optional[int] = None,
                 params: Optional[Mapping[str, np.ndarray]] = None, device=None):
        if len(config.in_dim) != 3:
            raise TaggerError("the ConvNet needs images: in_dim (channels, height, width)")
        shapes = convnet_shapes(config)
        initial = init_weights(shapes, config.seed if seed is None else seed) if params is None else None
        super().__init__(config, shapes, initial, params, device)
        self.sizes = conv_sizes(config)

    def forward(self, x: Tensor) -> Tensor:
        """The logits (B, n_classes) of x (B, D) or (B, C, H, W)."""
        h = self.images(x).reshape(-1, *self.config.in_dim)  # (B, C, H, W)
        p = self._parameters
        for l, (_, stride, pad, _) in enumerate(ALL_CNN_C, start=1):
            # h_l = relu(gamma_l BN(conv(h_{l-1}, W_l)) + beta_l), BN per channel   (B, C_l, H_l, W_l)
            a = F.conv2d(h, p[f"conv_{l}_W"], stride=stride, padding=pad)
            h = batch_norm(a, p[f"conv_{l}_gamma"], p[f"conv_{l}_beta"]).relu()
        h = h.reshape(h.shape[0], -1)  # (B, 10*5*5): the fully connected top replaces the global pooling
        # logits = gamma BN(h W) + beta                                              (B, n_classes)
        return batch_norm(project(h, p["fc_W"]), p["fc_gamma"], p["fc_beta"])

    def step_products(self, batch_size: int) -> List[Product]:
        """Each convolution as its im2col product (B*h_l*w_l, C_{l-1}*k*k) @ (C_{l-1}*k*k, C_l), then the
        fully connected top, on the labelled batch; the first convolution's input is the data."""
        products = []
        for l, (k, _, _, _) in enumerate(ALL_CNN_C, start=1):
            c_out, h, w = self.sizes[l]
            products.append(Product(batch_size * h * w, self.sizes[l - 1][0] * k * k, c_out, input_grad=l > 1))
        return products + [Product(batch_size, *self.shapes["fc_W"])]

    def extra_repr(self) -> str:
        return f"in_dim={self.config.in_dim}, channels={self.config.channels}, classes={self.config.n_classes}"

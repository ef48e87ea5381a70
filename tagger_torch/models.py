"""The models `tagger-torch train` can train: the registry, and the interface the Trainer drives.

Adding a model takes one file (its config dataclass, derived from `config.RunConfig`, and its
`nn.Module` with the methods of `Model` below) and one line in `MODELS`. A config file's `model`
field picks the entry (tagger_torch.config.from_dict); `build_model(config)` builds it.

No torch here (the registry is read when a config is loaded, also by the NumPy reference):
entries name their classes as "module:attribute" and are imported when first used.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

from .errors import TaggerError

if TYPE_CHECKING:  # annotations only
    import numpy as np
    import torch

# model type -> (its config class, its model class)
MODELS: Dict[str, Tuple[str, str]] = {
    "tagger": ("tagger_torch.config:TaggerConfig", "tagger_torch.model:Tagger"),
    # the classification baselines of the paper's Table 2 (docs/baselines.md); their files import torch
    "fc-mlp": ("tagger_torch.baselines.mlp:MLPConfig", "tagger_torch.baselines.mlp:MLP"),
    "fc-ladder": ("tagger_torch.baselines.ladder_net:LadderNetConfig", "tagger_torch.baselines.ladder_net:LadderNet"),
    "convnet": ("tagger_torch.baselines.convnet:ConvNetConfig", "tagger_torch.baselines.convnet:ConvNet"),
}


def _load(target: str) -> Any:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


def config_class(model_type: str) -> type:
    """The config dataclass of a model type; TaggerError for a type that is not registered."""
    if model_type not in MODELS:
        raise TaggerError(f"unknown model '{model_type}' (known: {', '.join(MODELS)})")
    return _load(MODELS[model_type][0])


def build_model(config, **kwargs) -> "Model":
    """The model of `config.model`, built from `config` (keyword arguments go to its constructor:
    `seed`, `params`, `dtype`, `device` for Tagger)."""
    return _load(MODELS[config.model][1])(config, **kwargs)


@dataclass
class Batch:
    """One training step's examples; a model reads the parts it trains on."""

    x: Optional["torch.Tensor"]  # (B, D) unlabelled examples (None for a model that reads only labelled ones)
    x_labelled: Optional["torch.Tensor"] = None  # (B', D) labelled examples, for models that use labels
    labels: Optional["torch.Tensor"] = None  # (B', objects_per_sample) int64 labels of x_labelled


@dataclass
class Split:
    """The examples of one split to score, on the model's device (masks stay on the host)."""

    x: "torch.Tensor"  # (N, D) inputs
    labels: Optional["torch.Tensor"] = None  # (N, objects_per_sample) int64, when the model classifies
    masks: Optional["np.ndarray"] = None  # (N, G, D) the data's true masks, when it has them


class Product(NamedTuple):
    """One matrix product (m, k) @ (k, n) of a training step's forward pass: an input (m, k), e.g. the
    K*B rows of a layer's input, times a weight (k, n). A convolution is its im2col product
    (B*h_out*w_out, c_in*kh*kw) @ (c_in*kh*kw, c_out), the same FLOP."""

    m: int
    k: int
    n: int
    input_grad: bool = True  # backward computes the input's gradient; False when the input depends on no
    #                          parameter (the data itself; Tagger's first a_in)

    def backward(self) -> List[Tuple[int, int, int]]:
        """The (m, k, n) of backward's products: the weight's gradient (k, m) @ (m, n) and, where autograd
        computes it, the input's (m, n) @ (n, k)."""
        return [(self.k, self.m, self.n)] + [(self.m, self.n, self.k)] * self.input_grad


def step_flop(products: Sequence[Product]) -> float:
    """FLOP of a training step's products: 2mkn each for the forward product and its backward's."""
    return float(sum(2 * p.m * p.k * p.n * (1 + len(p.backward())) for p in products))


class Model(Protocol):
    """What the Trainer, `evaluate` and `bench` need of a model (an `nn.Module`).

    Parameters are the module's, by name (`state_dict()` keys); checkpoints save `state_dict()`.
    """

    config: Any  # its config (a RunConfig)
    shapes: Mapping[str, Tuple[int, ...]]  # every parameter's name and shape, in creation order
    monitor: str  # the validation quantity whose NaN/inf stops training

    def batch_cost(self, batch: Batch, generator: "torch.Generator",
                   forward: Optional[Any] = None) -> Tuple["torch.Tensor", Dict[str, "torch.Tensor"]]:
        """(the scalar training cost to minimise, statistics to average over the epoch: detached
        tensors, scalars or one value per iteration, `cost` among them). `forward` is the module to
        run the passes through (self under DistributedDataParallel/torch.compile); default self."""

    def evaluate(self, split: Split, *, batch_size: int, generator: "torch.Generator",
                 progress: bool = False, **options) -> Dict[str, list]:
        """Per-quantity means over the split's examples (lists: one value per iteration). `evaluate` passes
        every model the options n_groups and n_iterations (None: the trained K and T; a model that does not
        group refuses n_groups), and a model with population statistics its `normaliser`."""

    def evaluation_facts(self, **options) -> Dict[str, Any]:
        """The settings an evaluation with `options` runs under (Tagger: K `groups` and T `iterations`,
        the trained ones unless `options` give others), for its report."""

    def load_params(self, params: Mapping[str, "np.ndarray"], subset: bool = False) -> list:
        """Copy parameters by name (every shape checked); returns the names loaded."""

    def save_npz(self, path: str) -> None:
        """Write the parameters by name, float32."""

    def step_products(self, batch_size: int) -> List[Product]:
        """The matrix products of one training step's forward pass, each pass and iteration listed
        (`bench` times each alone for its floor)."""

    def flop_per_step(self, batch_size: int) -> float:
        """FLOP of the matrix products of one training step, forward and backward: `step_flop(step_products)`."""

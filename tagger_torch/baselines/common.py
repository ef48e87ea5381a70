"""What the Table-2 baselines share (Greff et al. 2016, section 3.3; docs/baselines.md).

* `ClassifierConfig`: the fields of a digit classifier on Freq20-MNIST (derived from RunConfig);
* `softmax_cross_entropy`: the paper's cost for softmax outputs, with SPEC 6's targets (Tagger's);
* `batch_norm`: BatchNorm with a learned scale and shift, through `ops.normalize`;
* `init_weights`: N(0,1)/sqrt(fan_in) weights from numpy RandomState(seed), as the release draws;
* `Classifier`: the model interface (tagger_torch.models.Model) around a module's logits; its error is
  `costs.classification_error`, the very function that scores Tagger (SPEC 6's two-digit rule).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..config import RunConfig
from ..costs import classification_error
from ..errors import TaggerError
from ..models import Batch, Product, Split, step_flop
from ..named_params import NamedParameters
from ..ops import normalize

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class ClassifierConfig(RunConfig):
    """A digit classifier trained on labels (the baselines of Table 2); not a model type by itself."""

    in_dim: Tuple[int, ...] = (1, 28, 28)  # one Freq20 image
    lr: float = 0.001  # Adam (BlocksAdam) learning rate
    objects_per_sample: int = 1  # digits per image: 1 (TextureMNIST1) or 2 (TextureMNIST2)
    n_classes: int = 10  # output units: the ten digits

    @property
    def uses_labels(self) -> bool:
        return True

    @property
    def training_streams(self) -> Tuple[str, ...]:
        """Purely supervised: the labelled examples make the epoch (training/streams.py)."""
        return ("labelled",)

    def check_data(self, info, split: str = "train", training: bool = True) -> None:
        """As RunConfig.check_data, with the message a baseline on a data set without labels needs."""
        if training and not info.has_labels:
            raise TaggerError(f"the model '{self.model}' learns from labels but {info.path} has none "
                              "(no 'targets' with digit labels); train it on a Freq20-MNIST file")
        super().check_data(info, split, training)

    def _validate(self) -> None:
        super()._validate()
        if self.objects_per_sample not in (1, 2):
            self._bad("objects_per_sample", "must be 1 or 2")
        if not isinstance(self.n_classes, int) or self.n_classes < 2:
            self._bad("n_classes", "must be an integer >= 2")

    def _check_widths(self, name: str) -> None:
        widths = getattr(self, name)
        if not widths or any((not isinstance(h, int)) or h <= 0 for h in widths):
            self._bad(name, "must list positive layer sizes")


def softmax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """The paper's cost of a softmax output (section 3.3), with SPEC 6's targets.

    -sum_c t_c log softmax(logits)_c, t = onehot(y) for one digit, (onehot(y1) + onehot(y2)) / 2 for two
    (so onehot(y1) when y1 == y2): `costs.classification_cost(softmax(logits), labels)`, computed from
    log_softmax so that a confident wrong answer costs a large number instead of inf.
    logits: (B, C); labels: (B, M) int64. Returns the mean over the batch.
    """
    log_p = torch.log_softmax(logits, dim=1).gather(1, labels)  # (B, M): -sum_c t_c log P_c = -mean_j log P[y_j]
    return -log_p.mean(dim=1).mean()


def batch_norm(a: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """BatchNorm with a learned scale and shift: gamma * BN(a) + beta (Ioffe & Szegedy 2015, Alg. 1).

    a: (N, H) normalised per unit over the N rows of this minibatch, or (B, C, h, w) per channel over
    (B, h, w); `ops.normalize(., 'batch')` computes the statistics (biased variance, eps 1e-10; the
    batch's own statistics also when scoring, as Tagger's). gamma, beta: (H,) or (C,).
    """
    if a.dim() == 4:
        B, C, h, w = a.shape
        rows = a.permute(0, 2, 3, 1).reshape(B * h * w, C)  # (B h w, C)
        return (normalize(rows, "batch") * gamma + beta).reshape(B, h, w, C).permute(0, 3, 1, 2)
    return normalize(a, "batch") * gamma + beta


def init_weights(shapes: Mapping[str, Shape], seed: int) -> "OrderedDict[str, np.ndarray]":
    """Initial values, float32, in `shapes` order: weights (names ending in _W) N(0,1)/sqrt(fan_in) from
    numpy RandomState(seed) in that order (fan_in: rows of a (in, out) matrix, in*kh*kw of a (out, in,
    kh, kw) kernel); BatchNorm scales (_gamma) 1; shifts (_beta) 0."""
    rng = np.random.RandomState(seed)
    values = OrderedDict()
    for name, shape in shapes.items():
        if name.endswith("_W"):
            fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))
            values[name] = rng.randn(*shape) / np.sqrt(fan_in)
        else:
            values[name] = np.ones(shape) if name.endswith("_gamma") else np.zeros(shape)
    return OrderedDict((name, np.asarray(v, dtype=np.float32)) for name, v in values.items())


class Classifier(NamedParameters, nn.Module):
    """The model interface of a baseline around its `forward(x) -> logits (B, C)`.

    Parameters are attributes by name (`shapes`: name -> shape, creation order = state_dict keys),
    initialised from `initial` (numpy arrays) or `params`. Training: the cost of the labelled batch
    (`softmax_cross_entropy`). Scoring: class cost and error (%) on the clean inputs, in batches (BN
    uses each batch's statistics). Values are lists of one, the form of Tagger's per-iteration scores.
    """

    monitor = "class_error"

    def __init__(self, config: ClassifierConfig, shapes: Mapping[str, Shape],
                 initial: Mapping[str, np.ndarray], params: Optional[Mapping[str, np.ndarray]] = None,
                 device=None):
        super().__init__()
        self.config = config
        self.shapes = OrderedDict(shapes)
        for name, shape in self.shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device)))
        self.load_params(initial if params is None else params)

    def images(self, x: Tensor) -> Tensor:
        """x (B, D) or (B, *in_dim) -> (B, D) on the parameters' device and dtype."""
        p = next(iter(self._parameters.values()))
        return torch.as_tensor(x).to(device=p.device, dtype=p.dtype).reshape(-1, self.config.input_size)

    def batch_cost(self, batch: Batch, generator: torch.Generator,
                   forward: Optional[nn.Module] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
        """The cost of the labelled batch: cross-entropy of the softmax output against SPEC 6's targets."""
        forward = self if forward is None else forward
        logits = forward(batch.x_labelled)  # (B, C)
        cost = softmax_cross_entropy(logits, batch.labels)
        with torch.no_grad():
            error = classification_error(torch.softmax(logits, dim=1), batch.labels)
        return cost, {"cost": cost.detach(), "class_cost": cost.detach(), "class_error": error}

    def predict(self, x: Tensor) -> Tensor:
        """The logits (B, C) of the clean input, for scoring."""
        return self(x)

    @torch.inference_mode()
    def evaluate(self, split: Split, *, batch_size: int, generator: torch.Generator, progress: bool = False,
                 n_groups: Optional[int] = None, n_iterations: Optional[int] = None) -> Dict[str, list]:
        """Class cost and error (%) over split.x (N, D) in batches of `batch_size`, in order, clean inputs.

        The error is `costs.classification_error` of softmax(logits) (SPEC 6: top-1, or the top-two
        rule for two digits). n_iterations (Tagger's T) is ignored; n_groups needs a grouping model.
        """
        if n_groups is not None:
            self.config.require("grouping", "--groups")
        if split.labels is None:
            raise TaggerError(f"the model '{self.config.model}' is scored on labels, and the split has none")
        N = split.x.shape[0]
        cost = torch.zeros((), dtype=torch.float64, device=split.x.device)
        error = torch.zeros((), dtype=torch.float64, device=split.x.device)
        for start in tqdm(range(0, N, batch_size), disable=not progress, leave=False, unit="batch"):
            xb, lb = split.x[start:start + batch_size], split.labels[start:start + batch_size]
            logits = self.predict(xb)  # (B, C)
            cost += xb.shape[0] * softmax_cross_entropy(logits, lb).double()
            error += xb.shape[0] * classification_error(torch.softmax(logits, dim=1), lb).double()
        return {"class_cost": [float(cost / N)], "class_error": [float(error / N)]}

    def evaluation_facts(self, n_groups: Optional[int] = None, n_iterations: Optional[int] = None) -> dict:
        return {"model": self.config.model, "iterations": 1}

    def step_products(self, batch_size: int) -> List[Product]:
        raise NotImplementedError

    def flop_per_step(self, batch_size: int) -> float:
        return step_flop(self.step_products(batch_size))

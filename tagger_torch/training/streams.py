"""The data streams of training (SPEC 7; the release's `data.py`): which examples each step sees.

* The unlabelled stream is the train split, shuffled anew each epoch; it makes the epoch. Under
  torchrun each of the `world` ranks takes every world-th batch of it.
* The labelled stream (models that read labels): the train indices shuffled by RandomState(seed);
  with fewer labels than examples the first labeled_samples / n_classes of each class (by the first
  target column) in that order. It restarts with a fresh shuffle each epoch and cycles while the
  unlabelled stream makes the epoch; every train example is also in the unlabelled stream.
* A model that reads only the labelled stream (`config.training_streams == ('labelled',)`: the
  supervised baselines) has no unlabelled stream; its epoch is one pass over its labelled examples,
  shuffled anew each epoch (the labelled stream's shuffle of cycle 0).

Every shuffle comes from a generator seeded by (seed, stream, epoch, cycle), so a run stopped at any
step and resumed sees the same batches. The examples live on the device; a step only indexes them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..data import load_split
from ..errors import TaggerError
from ..inputs import check_labels
from ..models import Batch, Split


def labelled_indices(targets: np.ndarray, seed: int, labeled_samples: Optional[int],
                     batch_size: int) -> np.ndarray:
    """The labelled train examples, as the release's `data.setup_data` picks them.

    targets: (N, objects) the train split's labels. The train indices are shuffled by
    RandomState(seed); with all labels (None, 0 or >= N) they are the labelled set in that order;
    else the first labeled_samples/n_classes indices of each class, by the first target column,
    with n_classes = max label + 1 as in the release.
    """
    n = targets.shape[0]
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    n_labelled = n if not labeled_samples or labeled_samples >= n else labeled_samples
    if n_labelled < batch_size:
        raise TaggerError(f"labeled_samples={n_labelled} is smaller than batch_size={batch_size}")
    if n_labelled == n:
        return order
    n_classes = int(targets.max()) + 1
    if n_labelled % n_classes:
        raise TaggerError(f"labeled_samples={n_labelled} must be a multiple of the {n_classes} classes "
                          "(the labelled set is class-balanced)")
    first_column = targets.reshape(n, -1)[order, 0]
    per_class = n_labelled // n_classes
    picked = []
    for c in range(n_classes):
        of_class = order[first_column == c][:per_class]
        if len(of_class) < per_class:
            raise TaggerError(f"class {c} has only {len(of_class)} train examples; {per_class} are needed")
        picked.append(of_class)
    return np.concatenate(picked)


def stream_order(seed: int, epoch: int, n: int, stream: int = 0, cycle: int = 0) -> np.ndarray:
    """The shuffle of `n` examples for (epoch, stream, cycle): 0 = unlabelled, 1 = labelled stream."""
    return np.random.default_rng([seed, stream, epoch, cycle]).permutation(n)


def load_examples(path: str, split: str, config, device: torch.device, labels: bool, masks: bool = False) -> Split:
    """One split's inputs (N, D) float32 on `device`; with `labels` its checked labels (N, objects)
    there too, and with `masks` the data's true masks (N, G, ...) on the host."""
    sources = ("features",) + (("targets",) if labels else ()) + (("mask",) if masks else ())
    arrays = load_split(path, split, sources)
    x = torch.from_numpy(np.ascontiguousarray(arrays["features"], dtype=np.float32).reshape(-1, config.input_size))
    y = None
    if labels:
        y = torch.from_numpy(check_labels(arrays["targets"], config, len(x), f"the {split} labels of {path}"))
        y = y.to(device)
    return Split(x.to(device), y, arrays.get("mask"))


@dataclass
class TrainData:
    """One run's examples on the device, indexed per step (no per-batch host work)."""

    train: Split  # the train split: x (N, D), labels (N, objects) for models that read labels
    valid: Optional[Split]  # the validation split, when the file has one
    labelled: Optional[torch.Tensor]  # (NL,) long, indices into train.x of the labelled examples


def load_train_data(path: str, info, config, device: torch.device) -> TrainData:
    """The train split (and the valid split when the file has one) of `path`, for `config`."""
    train = load_examples(path, "train", config, device, config.uses_labels)
    labelled = None
    if config.uses_labels:
        picked = labelled_indices(train.labels.cpu().numpy(), config.seed, config.labeled_samples,
                                  config.batch_size)
        labelled = torch.from_numpy(picked).to(device)
    valid = load_examples(path, "valid", config, device, config.uses_labels) if "valid" in info.splits else None
    return TrainData(train, valid, labelled)


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on `device`, without waiting for the device (CUDA: through pinned memory)."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class Streams:
    """The batches of one rank, by (epoch, step): see the module docstring."""

    def __init__(self, data: TrainData, seed: int, batch_size: int, rank: int = 0, world: int = 1,
                 unlabelled: bool = True):
        """unlabelled: whether the model reads the unlabelled stream (which then makes the epoch);
        False: the labelled examples make the epoch (data.labelled must be set)."""
        self.data, self.seed, self.batch_size, self.rank, self.world = data, seed, batch_size, rank, world
        self.supervised = not unlabelled
        if self.supervised and data.labelled is None:
            raise TaggerError("a model that reads only the labelled stream needs labelled examples")
        # the examples of the stream that makes the epoch
        self.n_train = data.labelled.shape[0] if self.supervised else data.train.x.shape[0]
        self.n_batches = math.ceil(self.n_train / batch_size)
        self.steps_per_epoch = math.ceil(self.n_batches / world)  # each step trains `world` batches
        self.epoch, self.order = 0, None
        self._labelled = (-1, None)  # (cycle, that cycle's shuffled labelled indices)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The shuffle of the stream that makes the epoch in `epoch` (kept in checkpoints)."""
        if self.supervised:
            return stream_order(self.seed, epoch, self.n_train, stream=1, cycle=0)
        return stream_order(self.seed, epoch, self.n_train)

    def start_epoch(self, epoch: int, order: np.ndarray) -> None:
        """Serve the batches of `epoch`, whose shuffle (of the stream that makes it) is `order`."""
        self.epoch = epoch
        self.order = to_device(order, self.data.train.x.device)
        self._labelled = (-1, None)

    def batch(self, step: int) -> Batch:
        """This rank's batch of step `step` of the current epoch."""
        B = self.batch_size
        position = step * self.world + self.rank
        j = position % self.n_batches
        if self.supervised:
            idx = self.data.labelled[self.order[j * B:(j + 1) * B]]  # (B,) into the train split
            return Batch(None, self.data.train.x[idx], self.data.train.labels[idx])
        x = self.data.train.x[self.order[j * B:(j + 1) * B]]  # (B, D)
        if self.data.labelled is None:
            return Batch(x)
        labelled = self.data.labelled
        cycle, j = divmod(position, math.ceil(labelled.shape[0] / B))
        if cycle != self._labelled[0]:
            perm = stream_order(self.seed, self.epoch, labelled.shape[0], stream=1, cycle=cycle)
            self._labelled = (cycle, labelled[to_device(perm, labelled.device)])
        idx = self._labelled[1][j * B:(j + 1) * B]
        return Batch(x, self.data.train.x[idx], self.data.train.labels[idx])

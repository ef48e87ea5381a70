"""What a forward pass takes from a user, checked in one place for both twins and every command.

Parameters by name, inputs x, labels and noise draws: the NumPy reference's `forward`, the torch
`Tagger`, `init-params`/`trace` of both command lines, training and evaluation all check them here,
so a mistake gives the same one-line `TaggerError` wherever it is made. NumPy only (no torch).
"""
from __future__ import annotations

import re
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import TaggerError
from .files import load_npy, read_npz, read_npz_parts

Shape = Tuple[int, ...]

# Batch-norm book-keeping that the release's Ladder saves beside the parameters (running averages it
# never uses in Tagger, SPEC 7); loading ignores them.
_RELEASE_EXTRA = re.compile(r"^(counter|counter_max|shared_f_\d+_bn_\w+)$")
NOISE_ARRAYS = ("m_init", "corruption")  # the arrays of a noise file (docs/architecture.md)


def is_release_extra(name: str) -> bool:
    """True for the unused `counter`, `counter_max`, `shared_f_*_bn_*` entries of release files."""
    return _RELEASE_EXTRA.match(name) is not None


def check_params(params: Mapping[str, np.ndarray], shapes: Mapping[str, Shape],
                 subset: bool = False) -> Dict[str, np.ndarray]:
    """The entries of `params` (name -> array) that fit `shapes`, in the order of `shapes`.

    Every shape is checked; scalars stored with shape (1,) count as shape () (the release creates c2
    and v from scalars). Unless `subset`, every name in `shapes` must be present and no name other
    than the release's book-keeping entries may be extra. With `subset` (stage 2 of the MNIST
    protocol, as the release's `load_params` does), missing names are left out of the result and
    extra names are ignored. All problems are reported together in one TaggerError.
    """
    fitted, problems = {}, []
    for name, value in params.items():
        if name not in shapes:
            continue
        if tuple(shapes[name]) == () and np.shape(value) == (1,):
            value = value.reshape(())
        if tuple(np.shape(value)) != tuple(shapes[name]):
            problems.append(f"parameter {name} has shape {tuple(np.shape(value))}, the model needs "
                            f"{tuple(shapes[name])}")
        fitted[name] = value
    if not subset:
        missing = [n for n in shapes if n not in params]
        unknown = [n for n in params if n not in shapes and not is_release_extra(n)]
        if missing:
            problems.append("missing parameter(s) " + ", ".join(missing))
        if unknown:
            problems.append("unknown parameter name(s) " + ", ".join(unknown))
    if problems:
        raise TaggerError("parameters do not fit the model: " + "; ".join(problems))
    return {name: fitted[name] for name in shapes if name in fitted}


def read_params(path: str) -> Dict[str, np.ndarray]:
    """A parameter file (one array per release name; with its other parts when it was written in parts,
    as large shipped models are), unchecked; `check_params` fits it to a model."""
    return read_npz_parts(path, "parameter")


def check_shape(name: str, shape: Sequence[int], expected: Sequence[int]) -> None:
    """TaggerError '{name} has shape {shape}, expected {expected}' unless the two agree."""
    if tuple(shape) != tuple(expected):
        raise TaggerError(f"{name} has shape {tuple(shape)}, expected {tuple(expected)}")


def check_input_shape(shape: Sequence[int], config) -> int:
    """The number of examples B of an input x of `shape`: (B, D) or (B, *in_dim); else TaggerError."""
    shape = tuple(shape)
    D = config.input_size
    if len(shape) < 2 or shape[1:] not in ((D,), tuple(config.in_dim)):
        raise TaggerError(f"input has shape {shape}, expected (B, {D}) or "
                          f"(B, {', '.join(map(str, config.in_dim))})")
    return shape[0]


def check_label_shape(shape: Sequence[int], n: int, objects: int) -> None:
    """Labels of n examples: (n,) for one object, else (n, M) with M >= objects (the first M are used)."""
    shape = tuple(shape)
    if not (shape == (n,) and objects == 1) and not (len(shape) == 2 and shape[0] == n and shape[1] >= objects):
        expected = f"({n},) or ({n}, {objects})" if objects == 1 else f"({n}, {objects})"
        raise TaggerError(f"labels have shape {shape}, expected {expected} for objects_per_sample = {objects}")


def check_labels(labels, config, n: int, source: str = "labels") -> np.ndarray:
    """Labels (n,) or (n, M >= objects_per_sample) of n examples -> (n, objects_per_sample) int64.

    They must be integers in [0, n_classes); `source` names them in the error ("labels", "the train
    labels of FILE"). TaggerError when the config has no classification head.
    """
    if not config.uses_labels:
        raise TaggerError(f"{source} were given but the config has no classification head (class_cost_x is 0)")
    labels = np.asarray(labels)
    check_label_shape(labels.shape, n, config.objects_per_sample)
    if labels.ndim == 1:
        labels = labels[:, None]
    labels = labels[:, :config.objects_per_sample]
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels))
                and np.all(labels == np.round(labels))):
            raise TaggerError(f"{source} must be integers (got {labels.dtype})")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= config.n_classes):
        raise TaggerError(f"{source} must lie in [0, {config.n_classes}) for the model's {config.n_classes} "
                          f"classes (got {labels.min()}..{labels.max()})")
    return labels


def load_noise(path: str, config) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """A noise file: m_init (K, B, D) N(0,1) draws and optionally corruption (B, D) (SPEC 1, 3).

    The shapes are checked by the forward pass; here the names, and that binary corruption holds
    bit-flip indicators.
    """
    noise = read_npz(path, "noise")
    unknown = sorted(set(noise) - set(NOISE_ARRAYS))
    if unknown:
        raise TaggerError(f"unknown array(s) in noise file {path}: {', '.join(unknown)} "
                          f"(known: {', '.join(NOISE_ARRAYS)})")
    if "m_init" not in noise:
        raise TaggerError(f"noise file {path} has no array 'm_init' (K, B, D)")
    corruption = noise.get("corruption")
    if corruption is not None and config.input_type == "binary" and not np.all((corruption == 0) | (corruption == 1)):
        raise TaggerError("corruption must hold bit-flip indicators 0/1 for binary inputs")
    return noise["m_init"], corruption


def load_trace_inputs(config, input_path: str, noise_path: str, labels_path: Optional[str] = None):
    """The files of `trace` (both command lines): X.npy (B, *in_dim) or (B, D), the noise file N.npz
    and optionally Y.npy labels, checked. Returns (x, m_init, corruption or None, labels or None)."""
    x = load_npy(input_path, "input")
    B = check_input_shape(x.shape, config)
    m_init, corruption = load_noise(noise_path, config)
    labels = None if labels_path is None else check_labels(load_npy(labels_path, "labels"), config, B)
    return x, m_init, corruption, labels

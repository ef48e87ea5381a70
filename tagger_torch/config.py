"""Tagger's configuration: the release's field names, validated, with the release runners as presets.

Pure Python (no torch import) so that the NumPy reference's command line reads the same JSON files.
SPEC section 7 gives the runners' values.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from .errors import TaggerError

INPUT_TYPES = ("binary", "continuous")
NORMS = ("batch", "layer")


@dataclass(frozen=True)
class TaggerConfig:
    # --- model (SPEC sections 1-6); `trace` reads these ---
    in_dim: Tuple[int, ...] = (400,)  # shape of one input example; D = prod(in_dim)
    input_type: str = "binary"  # 'binary' (bit-flip noise, Bernoulli q) or 'continuous' (Gaussian)
    n_groups: int = 4  # K, the number of groups
    n_iterations: int = 3  # T, the number of TAG iterations
    encoder_proj: Tuple[int, ...] = (2000, 1000, 500)  # Ladder layer sizes H0..HL (HL = 11 with classes)
    input_noise: float = 0.2  # p (flip probability) for binary, s (noise std) for continuous inputs
    zhat_init_value: float = 0.26  # z0, the initial reconstruction (the data's mean pixel)
    class_cost_x: float = 0.0  # weight of the classification cost in the training cost; 0 = none
    objects_per_sample: int = 1  # digits per image for the classification head (1 or 2)
    norm: str = "batch"  # 'batch' (the release) or 'layer' (the paper's Tagger*, SPEC 8)
    # --- training (SPEC section 7); ignored by `trace` ---
    lr: float = 0.0004  # Adam learning rate (constant)
    batch_size: int = 100  # training minibatch; BN statistics are per minibatch
    valid_batch_size: int = 100  # evaluation minibatch (BN uses the batch's own statistics)
    num_epochs: int = 100  # epochs of the whole run
    seed: int = 10  # seeds weight init (numpy RandomState, release order) and the data order
    labeled_samples: Optional[int] = None  # labelled training examples (stage 2); None = all

    @property
    def input_size(self) -> int:
        """D, the number of elements of one input."""
        return int(math.prod(self.in_dim))

    @property
    def n_classes(self) -> int:
        """Classes scored by the head: the top layer's units less the 'no class' unit."""
        return self.encoder_proj[-1] - 1

    def replace(self, **changes: Any) -> "TaggerConfig":
        """A validated copy with some fields changed (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["in_dim"] = list(self.in_dim)
        d["encoder_proj"] = list(self.encoder_proj)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def __post_init__(self):
        _validate(self)


FIELDS = tuple(f.name for f in dataclasses.fields(TaggerConfig))


def _validate(c: TaggerConfig) -> None:
    def bad(name, why):
        raise TaggerError(f"config field '{name}' {why} (got {getattr(c, name)!r})")

    if not c.in_dim or any((not isinstance(d, int)) or d <= 0 for d in c.in_dim):
        bad("in_dim", "must be a non-empty list of positive integers")
    if c.input_type not in INPUT_TYPES:
        bad("input_type", f"must be one of {INPUT_TYPES}")
    if c.norm not in NORMS:
        bad("norm", f"must be one of {NORMS}")
    for name in ("n_groups", "n_iterations", "batch_size", "valid_batch_size", "num_epochs"):
        if not isinstance(getattr(c, name), int) or getattr(c, name) < 1:
            bad(name, "must be a positive integer")
    if len(c.encoder_proj) < 2 or any((not isinstance(h, int)) or h <= 0 for h in c.encoder_proj):
        bad("encoder_proj", "must list at least two positive layer sizes (H0 .. HL)")
    if c.input_type == "binary" and not 0.0 <= c.input_noise < 0.5:
        bad("input_noise", "must be a flip probability in [0, 0.5) for binary inputs")
    if c.input_type == "continuous" and c.input_noise < 0:
        bad("input_noise", "must be a non-negative noise std for continuous inputs")
    if c.objects_per_sample not in (1, 2):
        bad("objects_per_sample", "must be 1 or 2")
    if c.class_cost_x < 0:
        bad("class_cost_x", "must be >= 0")
    if c.class_cost_x > 0 and c.encoder_proj[-1] < 2:
        bad("encoder_proj", "must end with n_classes + 1 units when class_cost_x > 0")
    if c.lr <= 0:
        bad("lr", "must be > 0")
    if c.labeled_samples is not None and (not isinstance(c.labeled_samples, int) or c.labeled_samples < 1):
        bad("labeled_samples", "must be a positive integer or null")


def _coerce(name: str, value: Any) -> Any:
    """JSON -> field type: lists become tuples, integral floats of int fields become ints."""
    if name in ("in_dim", "encoder_proj"):
        if isinstance(value, int):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise TaggerError(f"config field '{name}' must be a list of integers (got {value!r})")
        return tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in value)
    if name in ("input_noise", "zhat_init_value", "class_cost_x", "lr"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TaggerError(f"config field '{name}' must be a number (got {value!r})")
        return float(value)
    return value


def from_dict(d: Dict[str, Any], base: Optional[TaggerConfig] = None) -> TaggerConfig:
    """Build a config from a dict of release field names; any other field is an error."""
    unknown = sorted(set(d) - set(FIELDS))
    if unknown:
        raise TaggerError(f"unknown config field(s): {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    values = (base or TaggerConfig()).to_dict()
    values.update({k: _coerce(k, v) for k, v in d.items()})
    values["in_dim"] = tuple(values["in_dim"])
    values["encoder_proj"] = tuple(values["encoder_proj"])
    return TaggerConfig(**values)


def load_config(path: str, base: Optional[TaggerConfig] = None) -> TaggerConfig:
    """Read a config JSON file (release field names; missing fields come from `base` or the defaults)."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        raise TaggerError(f"config file not found: {path}") from None
    except (OSError, json.JSONDecodeError) as e:
        raise TaggerError(f"cannot read config {path}: {e}") from None
    if not isinstance(d, dict):
        raise TaggerError(f"config {path} must hold a JSON object")
    return from_dict(d, base)


_SHAPES = TaggerConfig()  # the defaults are the Shapes runner (runner-shapes50k20x20.py)
_FREQ20_2_PRETRAIN = TaggerConfig(
    in_dim=(1, 28, 28), input_type="continuous", n_groups=4, n_iterations=3,
    encoder_proj=(3000, 2000, 1000), input_noise=0.2, zhat_init_value=0.5, class_cost_x=0.0,
    objects_per_sample=2, lr=0.001, num_epochs=150, seed=1, labeled_samples=1000,
)
_FREQ20_2_CONTINUE = _FREQ20_2_PRETRAIN.replace(
    encoder_proj=(3000, 2000, 1000, 500, 250, 11), n_iterations=4, input_noise=0.18,
    class_cost_x=0.1, lr=0.0002, num_epochs=50,
)

PRESETS: Dict[str, TaggerConfig] = {
    "shapes50k20x20": _SHAPES,
    "shapes50k20x20-ln": _SHAPES.replace(norm="layer"),
    # `make demo`: a small LayerNorm Tagger that groups Shapes after ~3 minutes on 2 CPU cores
    "shapes-demo": _SHAPES.replace(norm="layer", encoder_proj=(400, 200, 100), lr=0.002, num_epochs=15),
    "freq20-2mnist-pretrain": _FREQ20_2_PRETRAIN,
    "freq20-2mnist-continue": _FREQ20_2_CONTINUE,
    "freq20-1mnist-pretrain": _FREQ20_2_PRETRAIN.replace(objects_per_sample=1),
    "freq20-1mnist-continue": _FREQ20_2_CONTINUE.replace(objects_per_sample=1),
}


def get_preset(name: str) -> TaggerConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise TaggerError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})") from None

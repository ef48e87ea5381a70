"""Configurations: one frozen dataclass per model, validated, the release runners as presets, and the
one rule that resolves a run's config from a preset, a config file and the command's flags.

Pure Python (no torch), so that the NumPy reference's command line reads the same JSON files.
A config file's `model` field picks its class through the registry (`tagger_torch.models.MODELS`);
a file without it is Tagger's, as every file written before the field existed. Tagger's fields keep
the release's names; SPEC section 7 gives the runners' values.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, Optional, Tuple

from .errors import TaggerError
from .models import MODELS, config_class
from .norms import NORMS

INPUT_TYPES = ("binary", "continuous")
# what a model can do beyond training and scoring -> what the model then does (RunConfig.require's message)
CAPABILITIES = {
    "grouping": "splits its inputs into groups",
    "iterative": "refines its groups over iterations",
    "population_statistics": "can normalise with population statistics",
}


@dataclass(frozen=True)
class RunConfig:
    """The fields every model's config has: the model type, the inputs' shape and the training protocol.

    The Trainer reads only these, `input_size`, and for models that read labels `uses_labels`,
    `objects_per_sample` and `n_classes`. A model's config class adds its own fields after them.

    What else the model can do, the verbs ask of its config class (CAPABILITIES; `require`), never
    its name: `grouping` (masks, AMI/ARI: visualize, segment, evaluate --groups), `iterative` (TAG
    iterations: trace), `population_statistics` (calibrate, --norm-stats population).
    """

    grouping: ClassVar[bool] = False  # it splits each input into K groups with masks m_k
    iterative: ClassVar[bool] = False  # it runs T iterations whose intermediates `trace` records
    population_statistics: ClassVar[bool] = False  # its normalisations take kept statistics (normstats)

    model: str = "tagger"  # the model type (tagger_torch.models.MODELS); a file without it is Tagger's
    in_dim: Tuple[int, ...] = (400,)  # shape of one input example; D = prod(in_dim)
    # --- training (SPEC section 7); ignored by `trace` ---
    lr: float = 0.0004  # Adam learning rate
    # lr stays constant for the first lrate_decay x num_epochs epochs, then falls linearly to 0 at the
    # last epoch (Rasmus et al.'s Ladder, `lrate_decay` 0.67); 1 = constant, as the Tagger release trains
    lrate_decay: float = 1.0
    batch_size: int = 100  # training minibatch; BN statistics are per minibatch
    valid_batch_size: int = 100  # evaluation minibatch (BN uses the batch's own statistics)
    num_epochs: int = 100  # epochs of the whole run
    seed: int = 10  # seeds weight init (numpy RandomState, release order) and the data order
    labeled_samples: Optional[int] = None  # labelled training examples (stage 2); None = all

    @property
    def input_size(self) -> int:
        """D, the number of elements of one input."""
        return int(math.prod(self.in_dim))

    def lr_at(self, epoch: int) -> float:
        """The learning rate of epoch `epoch` (0-based): Rasmus et al.'s `LRDecay`, which after epoch
        i (1-based) sets lr = lr_0 max(0, (N - i) / (N - d)) once i > d = lrate_decay x N."""
        first, last = self.lrate_decay * self.num_epochs, self.num_epochs
        if epoch <= first or last <= first:
            return self.lr
        return self.lr * max(0.0, (last - epoch) / (last - first))

    @property
    def uses_labels(self) -> bool:
        """Whether training reads the labelled stream (and the data must hold labels)."""
        return False

    @property
    def binary_inputs(self) -> bool:
        """Whether the model reads binary inputs (every value 0 or 1)."""
        return False

    def require(self, capability: str, use: str) -> None:
        """TaggerError unless the model has `capability` (a key of CAPABILITIES), which `use` needs."""
        if not getattr(self, capability):
            raise TaggerError(f"{use} needs a model that {CAPABILITIES[capability]}; the model '{self.model}' "
                              "does not")

    @property
    def training_streams(self) -> Tuple[str, ...]:
        """The streams training reads (training/streams.py): 'unlabelled' (the whole train split, which
        then makes the epoch) and, for models that read labels, 'labelled'. A purely supervised model
        reads ('labelled',) only: its epoch is one pass over its labelled examples."""
        return ("unlabelled", "labelled") if self.uses_labels else ("unlabelled",)

    def replace(self, **changes: Any) -> "RunConfig":
        """A validated copy with some fields changed (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> Dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def check_data(self, info, split: str = "train", training: bool = True) -> None:
        """TaggerError unless the data file described by `info` (tagger_torch.data.DatasetInfo) fits:
        the same input size D and the split; for training also labels when the model reads them."""
        D = int(math.prod(info.in_dim))
        if D != self.input_size:
            raise TaggerError(f"the config's in_dim {list(self.in_dim)} (D={self.input_size}) does not match "
                              f"the inputs of {info.path}: {list(info.in_dim)} (D={D})")
        if split not in info.splits:
            raise TaggerError(f"{info.path} has no split '{split}' (it has: {', '.join(info.splits)})")
        if training and self.uses_labels:
            if not info.has_labels:
                raise TaggerError(f"the config classifies but {info.path} has no labels ('targets')")
            if info.objects_per_sample < self.objects_per_sample:
                raise TaggerError(f"the config has objects_per_sample={self.objects_per_sample} but the targets "
                                  f"of {info.path} have {info.objects_per_sample} column(s)")

    def __post_init__(self):
        self._validate()

    def _bad(self, name: str, why: str):
        raise TaggerError(f"config field '{name}' {why} (got {getattr(self, name)!r})")

    def _validate(self) -> None:
        if self.model not in MODELS:
            self._bad("model", f"must be one of {tuple(MODELS)}")
        if MODELS[self.model][0] != f"{type(self).__module__}:{type(self).__name__}":
            self._bad("model", f"names a model whose config is not {type(self).__name__}")
        if not self.in_dim or any((not isinstance(d, int)) or d <= 0 for d in self.in_dim):
            self._bad("in_dim", "must be a non-empty list of positive integers")
        for name in ("batch_size", "valid_batch_size", "num_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                self._bad(name, "must be a positive integer")
        if self.lr <= 0:
            self._bad("lr", "must be > 0")
        if not 0 <= self.lrate_decay <= 1:
            self._bad("lrate_decay", "must be a fraction of the epochs in [0, 1]")
        if self.labeled_samples is not None and (not isinstance(self.labeled_samples, int) or self.labeled_samples < 1):
            self._bad("labeled_samples", "must be a positive integer or null")


@dataclass(frozen=True)
class TaggerConfig(RunConfig):
    """Tagger (SPEC sections 1-6, 8) with the release's field names; `trace` reads these."""

    grouping: ClassVar[bool] = True
    iterative: ClassVar[bool] = True
    population_statistics: ClassVar[bool] = True  # at its BatchNorm sites (a norm without any: calibrate says so)

    input_type: str = "binary"  # 'binary' (bit-flip noise, Bernoulli q) or 'continuous' (Gaussian)
    n_groups: int = 4  # K, the number of groups
    n_iterations: int = 3  # T, the number of TAG iterations
    encoder_proj: Tuple[int, ...] = (2000, 1000, 500)  # Ladder layer sizes H0..HL (HL = 11 with classes)
    input_noise: float = 0.2  # p (flip probability) for binary, s (noise std) for continuous inputs
    zhat_init_value: float = 0.26  # z0, the initial reconstruction (the data's mean pixel)
    class_cost_x: float = 0.0  # weight of the classification cost in the training cost; 0 = none
    objects_per_sample: int = 1  # digits per image for the classification head (1 or 2)
    norm: str = "batch"  # 'batch' (the release) or a LayerNorm candidate for Tagger* (norms.NORMS, SPEC 8)

    @property
    def n_classes(self) -> int:
        """Classes scored by the head: the top layer's units less the 'no class' unit."""
        return self.encoder_proj[-1] - 1

    @property
    def uses_labels(self) -> bool:
        return self.class_cost_x > 0

    @property
    def binary_inputs(self) -> bool:
        return self.input_type == "binary"

    def check_data(self, info, split: str = "train", training: bool = True) -> None:
        """As `RunConfig.check_data`; for training a binary model also needs binary data."""
        super().check_data(info, split, training)
        if training and self.input_type == "binary" and info.input_type != "binary":
            raise TaggerError(f"the config says input_type 'binary' but {info.path} holds values other than 0 and 1")

    def _validate(self) -> None:
        super()._validate()
        if self.input_type not in INPUT_TYPES:
            self._bad("input_type", f"must be one of {INPUT_TYPES}")
        if self.norm not in NORMS:
            self._bad("norm", f"must be one of {tuple(NORMS)}")
        for name in ("n_groups", "n_iterations"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                self._bad(name, "must be a positive integer")
        if len(self.encoder_proj) < 2 or any((not isinstance(h, int)) or h <= 0 for h in self.encoder_proj):
            self._bad("encoder_proj", "must list at least two positive layer sizes (H0 .. HL)")
        if self.input_type == "binary" and not 0.0 <= self.input_noise < 0.5:
            self._bad("input_noise", "must be a flip probability in [0, 0.5) for binary inputs")
        if self.input_type == "continuous" and self.input_noise < 0:
            self._bad("input_noise", "must be a non-negative noise std for continuous inputs")
        if self.objects_per_sample not in (1, 2):
            self._bad("objects_per_sample", "must be 1 or 2")
        if self.class_cost_x < 0:
            self._bad("class_cost_x", "must be >= 0")
        if self.class_cost_x > 0 and self.encoder_proj[-1] < 2:
            self._bad("encoder_proj", "must end with n_classes + 1 units when class_cost_x > 0")


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    """JSON -> the field's type: lists become tuples (integral floats in them ints), numbers floats."""
    if str(field.type).startswith("Tuple"):
        if isinstance(value, int):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise TaggerError(f"config field '{field.name}' must be a list of integers (got {value!r})")
        return tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in value)
    if field.type == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TaggerError(f"config field '{field.name}' must be a number (got {value!r})")
        return float(value)
    return value


def from_dict(d: Dict[str, Any], base: Optional[RunConfig] = None) -> RunConfig:
    """A config from a dict of field names: `model` (default: the base's, else 'tagger') picks the
    class; missing fields come from `base` or the class's defaults; any other field is an error."""
    model = d.get("model", base.model if base is not None else "tagger")
    cls = config_class(model)
    if base is not None and type(base) is not cls:
        raise TaggerError(f"the config's model '{model}' is not the preset's '{base.model}'")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise TaggerError(f"unknown config field(s): {', '.join(unknown)} (known: {', '.join(fields)})")
    start = base or cls()
    values = {name: getattr(start, name) for name in fields}
    values.update({k: _coerce(fields[k], v) for k, v in d.items()})
    return cls(**values)


def load_config(path: str, base: Optional[RunConfig] = None) -> RunConfig:
    """Read a config JSON file (missing fields come from `base` or the defaults)."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        raise TaggerError(f"config file not found: {path}") from None
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8 text
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
# stage 2 with 1000 labels as the release's shipped stage-2 model was trained (its pickled settings:
# a grid search's class_cost_x, input_noise and lr; docs/baselines.md, "Tagger's rows")
_FREQ20_2_CONTINUE_1K = _FREQ20_2_CONTINUE.replace(class_cost_x=0.05, input_noise=0.15, lr=0.0005)

PRESETS: Dict[str, Any] = {
    "shapes50k20x20": _SHAPES,
    "shapes50k20x20-ln": _SHAPES.replace(norm="layer"),
    # the other LayerNorm placements for Tagger* (norms.NORMS; docs/training.md "LayerNorm placements")
    "shapes50k20x20-ln-groups": _SHAPES.replace(norm="layer-groups"),
    "shapes50k20x20-ln-gain": _SHAPES.replace(norm="layer-gain"),
    "shapes50k20x20-ln-ladder": _SHAPES.replace(norm="layer-ladder"),
    "shapes50k20x20-ln-tagger": _SHAPES.replace(norm="layer-tagger"),
    # `make demo`: a small LayerNorm Tagger that groups Shapes after ~3 minutes on 2 CPU cores
    "shapes-demo": _SHAPES.replace(norm="layer", encoder_proj=(400, 200, 100), lr=0.002, num_epochs=15),
    "freq20-2mnist-pretrain": _FREQ20_2_PRETRAIN,
    "freq20-2mnist-continue": _FREQ20_2_CONTINUE,
    "freq20-1mnist-pretrain": _FREQ20_2_PRETRAIN.replace(objects_per_sample=1),
    "freq20-1mnist-continue": _FREQ20_2_CONTINUE.replace(objects_per_sample=1),
    "freq20-2mnist-continue-1k": _FREQ20_2_CONTINUE_1K,
    "freq20-1mnist-continue-1k": _FREQ20_2_CONTINUE_1K.replace(objects_per_sample=1),
}


# Rasmus et al.'s published settings (CuriousAI/ladder, README and run.py) by label count: the denoising
# cost weights of layers 0..L, the noise std, and 150 epochs of Adam at lr 0.002 decayed linearly to 0
# from epoch 100.5 (`lrate_decay` 0.67). Their 2015 code decays the rate Adam uses; a 2016 commit made
# lr a plain float that the decay no longer reached, and these presets follow the 2015 behaviour.
_LADDER_SCHEDULE = {"lr": 0.002, "num_epochs": 150, "lrate_decay": 0.67}
_LADDER_ALL_LABELS = {"denoising_weights": [1000, 1, 0.01, 0.01, 0.01, 0.01, 0.01], "noise_std": 0.3,
                      **_LADDER_SCHEDULE}
_LADDER_1K_LABELS = {"denoising_weights": [2000, 20, 0.1, 0.1, 0.1, 0.1, 0.1], "noise_std": 0.2, **_LADDER_SCHEDULE}


def _baseline_presets() -> Dict[str, Dict[str, Any]]:
    """The Table-2 baselines (Greff et al. 2016, section 3.3) on Freq20-1/2MNIST, with all 50 000 labels
    (`freq20-Nmnist-MODEL`) and with the class-balanced 1000 of Tagger's stage 2 (`...-1k`: same seed 1,
    so the same examples). Field values only: their config classes import torch and are built by
    `get_preset`. Sizes are the paper's; docs/baselines.md gives the rest of the choices."""
    sizes = {  # model -> (its fields with 50 000 labels, its fields with 1000 labels)
        "fc-mlp": ({"hidden": [2000, 2000, 2000]}, {"hidden": [1000, 1000]}),
        "fc-ladder": (_LADDER_ALL_LABELS, _LADDER_1K_LABELS),  # 3000-2000-1000-500-250, the config's default
        "convnet": ({}, {}),  # All-CNN-C's widths, the config's default
    }
    presets = {}
    for n_digits in (1, 2):
        for model, (all_labels, few_labels) in sizes.items():
            name = f"freq20-{n_digits}mnist-{model}"
            common = {"model": model, "in_dim": [1, 28, 28], "objects_per_sample": n_digits, "seed": 1}
            presets[name] = {**common, **all_labels, "labeled_samples": None}
            presets[name + "-1k"] = {**common, **few_labels, "labeled_samples": 1000}
    # the Ladder's own check (docs/baselines.md): plain MNIST (`make-dataset mnist`), Rasmus et al.'s
    # 784-1000-500-250-250-250-10 with 1000 labels
    presets["mnist-fc-ladder-1k"] = {"model": "fc-ladder", "in_dim": [1, 28, 28], "objects_per_sample": 1, "seed": 1,
                                     "hidden": [1000, 500, 250, 250, 250], "labeled_samples": 1000,
                                     **_LADDER_1K_LABELS}
    return presets


# name -> a config, or (the baselines) the field values of one, built by `get_preset`
PRESETS.update(_baseline_presets())


def get_preset(name: str) -> RunConfig:
    try:
        preset = PRESETS[name]
    except KeyError:
        raise TaggerError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})") from None
    return from_dict(preset) if isinstance(preset, dict) else preset


def preset_for_data(info, model: str = "tagger") -> str:
    """The preset of `model` that matches a data file (when neither --preset nor --config is given):
    Tagger's release runner, or a baseline's preset with all labels (it needs a labelled data set)."""
    D = int(math.prod(info.in_dim))
    if model != "tagger":
        config_class(model)  # an unknown model fails here, naming the known ones
        if not info.has_labels:
            raise TaggerError(f"the model '{model}' learns from labels but {info.path} has none (no 'targets' "
                              "with digit labels); train it on a Freq20-MNIST file")
        if D != 784:
            raise TaggerError(f"no preset of '{model}' matches {info.path} (inputs of shape {info.in_dim}); "
                              "give --config with the model's fields")
        return f"freq20-{2 if info.objects_per_sample == 2 else 1}mnist-{model}"
    if info.input_type == "binary" and D == 400:
        return "shapes50k20x20"
    if info.input_type == "continuous" and D == 784:
        return f"freq20-{2 if info.objects_per_sample == 2 else 1}mnist-pretrain"
    raise TaggerError(f"no preset matches {info.path} ({info.input_type} inputs of shape {info.in_dim}); "
                      f"give --preset or --config (presets: {', '.join(PRESETS)})")


def resolve_config(preset: Optional[str] = None, config_path: Optional[str] = None,
                   default_preset: Optional[Callable[[], str]] = None, **overrides: Any) -> RunConfig:
    """The one rule of every command: the preset (the named one; without --preset and --config the
    default's), then the config file's fields, then the flags (`overrides`; None = unchanged)."""
    if preset is not None:
        base = get_preset(preset)
    elif config_path is None:
        if default_preset is None:
            raise TaggerError("give --preset NAME or --config CFG.json")
        base = get_preset(default_preset())
    else:
        base = None
    config = load_config(config_path, base) if config_path is not None else base
    return config.replace(**overrides)

"""The options several verbs share, defined once: device, precision, compile, preset and config,
and --pretrained NAME (a shipped model, tagger_torch.pretrained).

How a preset, a config file and the flags combine is `tagger_torch.config.resolve_config`.
"""
from __future__ import annotations

from typing import Callable, Optional

import click

from ..config import PRESETS
from ..errors import TaggerError
from ..precision import PRECISIONS


def device_option(default: str = "auto") -> Callable:
    """--device cpu|cuda|cuda:N (|auto: CUDA when present)."""
    return click.option("--device", default=default, show_default=True,
                        help="cpu, cuda, cuda:N" + (" or auto." if default == "auto" else "."))


def precision_option(note: str) -> Callable:
    """--precision auto|fp32|bf16|tf32 (tagger_torch.precision); auto is fp32."""
    return click.option("--precision", type=click.Choice(("auto",) + PRECISIONS), default="auto", show_default=True,
                        help=f"auto: fp32{note}")


def compile_option(default: Optional[bool], help: str) -> Callable:
    """--compile/--no-compile: torch.compile the training step."""
    return click.option("--compile/--no-compile", "compile_", default=default, show_default=default is not None,
                        help=help)


def adam_option() -> Callable:
    """--adam fused|foreach: Adam's form (optim.BlocksAdam), passed on as `fused_adam` (None: the default)."""
    return click.option("--adam", "fused_adam", type=click.Choice(("fused", "foreach")), default=None,
                        callback=lambda ctx, param, value: None if value is None else value == "fused",
                        help="Adam's form: the same rule, rounded differently. Default: a resumed run's own, else "
                        "fused with a compiled step. A run switched on resume (to fused: faster, docs/speed.md) is no "
                        "longer bitwise the uninterrupted run.")


def cuda_graphs_option() -> Callable:
    """--cuda-graphs/--no-cuda-graphs: record a compiled step as CUDA graphs (precision.compile_mode)."""
    return click.option("--cuda-graphs/--no-cuda-graphs", "cuda_graphs", default=None,
                        help="A compiled step on CUDA as CUDA graphs (torch.compile mode reduce-overhead). "
                        "Default: on a single CUDA device, not under torchrun; never on the CPU.")


def config_options(preset_default: Optional[str] = None, preset_help: str = "Preset to start from: {}.",
                   config_help: str = "Config JSON (release field names); overrides the preset.") -> Callable:
    """--preset NAME and --config CFG.json (tagger_torch.config.resolve_config combines them);
    '{}' in preset_help becomes the list of presets."""
    def decorate(f):
        f = click.option("--config", "config_path", type=str, metavar="CFG.json", help=config_help)(f)
        return click.option("--preset", type=str, default=preset_default, show_default=preset_default is not None,
                            help=preset_help.format(", ".join(PRESETS)))(f)
    return decorate


def pretrained_option() -> Callable:
    """--pretrained NAME: a model this project ships (tagger_torch.pretrained), instead of --run."""
    from ..pretrained import known_names
    return click.option("--pretrained", type=str, metavar="NAME",
                        help=f"A shipped model ({known_names()}; results/NAME/ of the source tree), instead of --run.")


def run_or_pretrained(run: Optional[str], pretrained: Optional[str], *others: Optional[str]) -> Optional[str]:
    """The run directory of --run, or of --pretrained NAME (resolved; one-line TaggerError when
    unknown or not published yet). `others`: values of flags that --pretrained excludes (--params, --config)."""
    if pretrained is None:
        return run
    if run is not None or any(value is not None for value in others):
        raise TaggerError("give --pretrained NAME alone, without --run, --params or --config")
    from ..pretrained import resolve_pretrained
    return resolve_pretrained(pretrained)

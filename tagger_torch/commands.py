"""`tagger-torch init-params` and `tagger-torch trace`: the audit verbs, twins of the reference's.

Same flags, files and array names as `python -m tagger_reference init-params / trace`
(docs/architecture.md "Trace files"), plus `--dtype float32|float64` and `--device` for `trace`,
and `--preset NAME` as an alternative to `--config CFG.json`.
"""
from __future__ import annotations

from typing import Optional

import click
import numpy as np

from .config import TaggerConfig, get_preset, load_config
from .errors import TaggerError
from .params import init_params as release_init, load_npz, save_npz

DTYPES = ("float32", "float64")
NOISE_ARRAYS = ("m_init", "corruption")


def resolve_config(config_path: Optional[str], preset: Optional[str]) -> TaggerConfig:
    if (config_path is None) == (preset is None):
        raise TaggerError("give exactly one of --config CFG.json and --preset NAME")
    return load_config(config_path) if config_path is not None else get_preset(preset)


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise TaggerError(f"{what} file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise TaggerError(f"cannot read {what} file {path}: {e}") from None


def _config_options(f):
    f = click.option("--preset", default=None, help="a preset name instead of --config")(f)
    return click.option("--config", "config_path", default=None, metavar="CFG.json",
                        help="config JSON with the release's field names")(f)


@click.command("init-params")
@_config_options
@click.option("--seed", type=int, default=None, help="RandomState seed (default: the config's seed)")
@click.option("--out", required=True, metavar="P.npz", help="where to write the parameters")
def init_params(config_path, preset, seed, out):
    """Write the release's initial parameters (SPEC 7), float32, one array per release name."""
    config = resolve_config(config_path, preset)
    save_npz(out, release_init(config, config.seed if seed is None else seed))
    click.echo(f"wrote {out}")


@click.command("trace")
@_config_options
@click.option("--params", "params_path", required=True, metavar="P.npz", help="parameters by name")
@click.option("--input", "input_path", required=True, metavar="X.npy", help="(B, *in_dim) or (B, D)")
@click.option("--noise", "noise_path", required=True, metavar="N.npz",
              help="m_init (K,B,D) and optionally corruption (B,D); without it the clean path")
@click.option("--out", required=True, metavar="TRACE.npz")
@click.option("--labels", "labels_path", default=None, metavar="Y.npy", help="(B,) or (B, objects)")
@click.option("--dtype", default="float32", help="float32 (default) or float64")
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N")
def trace(config_path, preset, params_path, input_path, noise_path, out, labels_path, dtype, device):
    """Run one forward pass and save every intermediate (z, m, m_lh, delta_z, y, costs)."""
    import torch

    from .model import Tagger
    from .precision import resolve_device

    config = resolve_config(config_path, preset)
    if dtype not in DTYPES:
        raise TaggerError(f"unknown --dtype '{dtype}' (use {' or '.join(DTYPES)})")
    model = Tagger(config, params=load_npz(params_path), dtype=getattr(torch, dtype),
                   device=resolve_device(device))
    x = _load_npy(input_path, "input")
    if not np.issubdtype(x.dtype, np.number):
        raise TaggerError(f"input {input_path} must hold numbers (got {x.dtype})")
    noise = load_npz(noise_path)
    unknown = sorted(set(noise) - set(NOISE_ARRAYS))
    if unknown:
        raise TaggerError(f"unknown array(s) in noise file {noise_path}: {', '.join(unknown)} "
                          f"(known: {', '.join(NOISE_ARRAYS)})")
    if "m_init" not in noise:
        raise TaggerError(f"noise file {noise_path} has no array 'm_init' (K, B, D)")
    corruption = noise.get("corruption")
    if corruption is not None and config.input_type == "binary" and not np.all((corruption == 0) | (corruption == 1)):
        raise TaggerError("corruption must hold bit-flip indicators 0/1 for binary inputs")
    labels = None
    if labels_path is not None:
        if config.class_cost_x <= 0:
            raise TaggerError("labels were given but the config has no classification head (class_cost_x is 0)")
        labels = _load_npy(labels_path, "labels")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TaggerError(f"labels in {labels_path} must be integers (got {labels.dtype})")
        if labels.size and (labels.min() < 0 or labels.max() >= config.n_classes):
            raise TaggerError(f"labels must lie in [0, {config.n_classes}) for encoder_proj ending "
                              f"in {config.encoder_proj[-1]} (got {labels.min()}..{labels.max()})")
    with torch.no_grad():
        result = model(x, corrupt=False, corruption=corruption, m_init=noise["m_init"],
                       labels=labels, record=True)
    arrays = {key: value.cpu().numpy() for key, value in result.trace.items()}
    try:
        np.savez(out, **arrays)
    except OSError as e:
        raise TaggerError(f"cannot write {out}: {e}") from None
    click.echo(f"wrote {out}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items()))

"""`tagger-torch init-params` and `tagger-torch trace`: the audit verbs, twins of the NumPy reference's.

Same flags, files and array names as `python -m tagger_reference init-params / trace`
(docs/architecture.md "Trace files"), plus `--dtype float32|float64` and `--device` for `trace`,
and `--preset NAME` as an alternative to `--config CFG.json`.
"""
from __future__ import annotations

from typing import Optional

import click
import torch

from ..config import RunConfig, resolve_config
from ..errors import TaggerError
from ..files import save_npz
from ..inputs import load_trace_inputs, read_params
from ..models import build_model
from ..precision import resolve_device
from .options import config_options, device_option

DTYPES = ("float32", "float64")


def one_config(config_path: Optional[str], preset: Optional[str]) -> RunConfig:
    """The config of an audit verb: exactly one of --config and --preset."""
    if (config_path is None) == (preset is None):
        raise TaggerError("give exactly one of --config CFG.json and --preset NAME")
    return resolve_config(preset, config_path)


_audit_config = config_options(preset_help="A preset instead of --config: {}.",
                               config_help="Config JSON with the release's field names.")


@click.command("init-params")
@_audit_config
@click.option("--seed", type=int, default=None, help="RandomState seed (default: the config's seed)")
@click.option("--out", required=True, metavar="P.npz", help="where to write the parameters")
def init_params(config_path, preset, seed, out):
    """Write the release's initial parameters (SPEC 7), float32, one array per release name."""
    config = one_config(config_path, preset)
    build_model(config, seed=config.seed if seed is None else seed).save_npz(out)
    click.echo(f"wrote {out}")


@click.command("trace")
@_audit_config
@click.option("--params", "params_path", required=True, metavar="P.npz", help="parameters by name")
@click.option("--input", "input_path", required=True, metavar="X.npy", help="(B, *in_dim) or (B, D)")
@click.option("--noise", "noise_path", required=True, metavar="N.npz",
              help="m_init (K,B,D) and optionally corruption (B,D); without it the clean path")
@click.option("--out", required=True, metavar="TRACE.npz")
@click.option("--labels", "labels_path", default=None, metavar="Y.npy", help="(B,) or (B, objects)")
@click.option("--dtype", default="float32", help="float32 (default) or float64")
@device_option("cpu")
def trace(config_path, preset, params_path, input_path, noise_path, out, labels_path, dtype, device):
    """Run one forward pass and save every intermediate (z, m, m_lh, delta_z, y, costs)."""
    config = one_config(config_path, preset)
    config.require("iterative", "trace")
    if dtype not in DTYPES:
        raise TaggerError(f"unknown --dtype '{dtype}' (use {' or '.join(DTYPES)})")
    model = build_model(config, params=read_params(params_path), dtype=getattr(torch, dtype),
                        device=resolve_device(device))
    x, m_init, corruption, labels = load_trace_inputs(config, input_path, noise_path, labels_path)
    with torch.no_grad():
        result = model(x, corrupt=False, corruption=corruption, m_init=m_init, labels=labels, record=True)
    arrays = {key: value.cpu().numpy() for key, value in result.trace.items()}
    save_npz(out, arrays, dtype=None, compressed=False)
    click.echo(f"wrote {out}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items()))

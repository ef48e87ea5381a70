"""`python -m tagger_reference init-params | trace`: the audit interface of the NumPy reference.

The verbs, options and files are those of `tagger-torch init-params | trace` (docs/architecture.md).
A TaggerError (bad config field, missing array, shape mismatch, unknown parameter name) is printed
as one line "Error: ..." on stderr with exit status 2.
"""
import functools
import sys

import click
import numpy as np

from tagger_torch.config import load_config
from tagger_torch.errors import TaggerError

from .params import init_params as init_params_fn
from .params import load_params, save_params
from .tagger import forward

NOISE_ARRAYS = ("m_init", "corruption")


def load_array(path, what):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise TaggerError(f"{what} file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise TaggerError(f"cannot read {what} file {path}: {e}") from None


def load_noise(path, config):
    """The noise file: m_init (K, B, D) N(0,1) draws; optional corruption (B, D) (SPEC 1, 3)."""
    noise = load_array(path, "noise")
    if not isinstance(noise, np.lib.npyio.NpzFile):
        raise TaggerError(f"noise file {path} must be an .npz holding m_init and optionally corruption")
    with noise:
        unknown = sorted(set(noise.files) - set(NOISE_ARRAYS))
        if unknown:
            raise TaggerError(f"unknown array(s) in noise file {path}: {', '.join(unknown)}"
                              f" (known: {', '.join(NOISE_ARRAYS)})")
        if "m_init" not in noise.files:
            raise TaggerError(f"noise file {path} has no array 'm_init' (K, B, D)")
        m_init = noise["m_init"]
        corruption = noise["corruption"] if "corruption" in noise.files else None
    if m_init.ndim != 3 or m_init.shape[0] != config.n_groups:
        raise TaggerError(f"m_init has shape {m_init.shape}, expected (K, B, D) with K = n_groups = {config.n_groups}")
    if corruption is not None and config.input_type == "binary" and not np.all((corruption == 0) | (corruption == 1)):
        raise TaggerError("corruption must hold bit-flip indicators 0/1 for binary inputs")
    return m_init, corruption


def main_guard(fn):
    """Turn a TaggerError into one line on stderr and exit status 2."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TaggerError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(TaggerError.exit_code)
    return run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """The NumPy reference of Tagger (Algorithm 1 in float64, explicit loops)."""


@main.command("init-params")
@click.option("--config", "config_path", required=True, help="config JSON (release field names)")
@click.option("--seed", type=int, default=None, help="RandomState seed [default: the config's seed]")
@click.option("--out", required=True, help="output .npz, one float32 array per release parameter name")
@main_guard
def init_params(config_path, seed, out):
    """Release-order initial parameters (SPEC 7)."""
    config = load_config(config_path)
    params = init_params_fn(config, config.seed if seed is None else seed)
    with open(out, "wb") as f:
        save_params(f, params)


@main.command("trace")
@click.option("--config", "config_path", required=True, help="config JSON (release field names)")
@click.option("--params", "params_path", required=True, help="parameter .npz (release names)")
@click.option("--input", "input_path", required=True, help="X.npy, (B, *in_dim) or (B, D)")
@click.option("--noise", "noise_path", required=True, help="N.npz: m_init (K,B,D), optional corruption (B,D)")
@click.option("--out", required=True, help="output trace .npz")
@click.option("--labels", "labels_path", default=None, help="Y.npy, (B,) or (B, 2) digit labels")
@main_guard
def trace(config_path, params_path, input_path, noise_path, out, labels_path):
    """One forward pass with every intermediate saved (docs/architecture.md, "Trace files")."""
    config = load_config(config_path)
    params = load_params(params_path, config)
    x = load_array(input_path, "input")
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.number):
        raise TaggerError(f"input {input_path} must be a numeric .npy array")
    m_init, corruption = load_noise(noise_path, config)
    labels = None if labels_path is None else load_array(labels_path, "labels")
    result = forward(params, config, x, m_init, corruption=corruption, labels=labels)
    with open(out, "wb") as f:
        np.savez(f, **result)

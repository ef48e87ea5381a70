"""`python -m tagger_reference init-params | trace`: the audit interface of the NumPy reference.

The verbs, options and files are those of `tagger-torch init-params | trace` (docs/architecture.md).
A TaggerError (bad config field, missing array, shape mismatch, unknown parameter name) is printed
as one line "Error: ..." on stderr with exit status 2.
"""
import functools
import sys

import click

from tagger_torch.config import TaggerConfig, load_config
from tagger_torch.errors import TaggerError
from tagger_torch.files import save_npz
from tagger_torch.inputs import check_params, load_trace_inputs, read_params

from .model import forward
from .params import init_params as init_params_fn
from .params import param_shapes


def reference_config(path):
    """A config file's Tagger config; the reference implements Tagger only."""
    config = load_config(path)
    if not isinstance(config, TaggerConfig):
        raise TaggerError(f"the NumPy reference implements Tagger only; {path} has model '{config.model}'")
    return config


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
    config = reference_config(config_path)
    save_npz(out, init_params_fn(config, config.seed if seed is None else seed))


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
    config = reference_config(config_path)
    params = check_params(read_params(params_path), param_shapes(config))
    x, m_init, corruption, labels = load_trace_inputs(config, input_path, noise_path, labels_path)
    result = forward(params, config, x, m_init, corruption=corruption, labels=labels)
    save_npz(out, result, dtype=None, compressed=False)

"""`tagger-torch`: the command line.

Each verb lives in the module that implements it and is imported only when that verb runs, so
`tagger-torch --help` and `make-dataset` do not pay for importing torch. A `TaggerError` (bad
input) becomes one line on stderr and exit status 2, with no traceback.

OpenMP threads that wait by spinning lose most of their speed when another process keeps a core
busy (docs/speed.md, "Shared CPUs"), so the command line asks for OMP_WAIT_POLICY=PASSIVE unless
the user set OMP_WAIT_POLICY. The OpenMP runtime reads it once, when torch is imported, so it is
set here, before any verb imports torch (tagger_torch/__init__ imports no torch).
"""
import importlib
import os
import sys

import click

from .errors import TaggerError

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any import of torch (none above)

# verb -> "module:attribute" of a click.Command
COMMANDS = {
    "make-dataset": "tagger_torch.data.cli:make_dataset",
    "data-summary": "tagger_torch.data.cli:data_summary",
    "init-params": "tagger_torch.commands:init_params",
    "trace": "tagger_torch.commands:trace",
    "train": "tagger_torch.train:train_command",
    "evaluate": "tagger_torch.evaluate:evaluate_command",
    "visualize": "tagger_torch.visualize:visualize_command",
    "bench": "tagger_torch.bench:bench_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TaggerError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(TaggerError.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tagger-torch")
def main():
    """Tagger: deep unsupervised perceptual grouping (Greff et al., NIPS 2016)."""

"""`tagger-torch`: the command line.

Each verb lives in a module of `tagger_torch.commands` and is imported only when that verb runs;
the verbs' one-line help is listed here, so `tagger-torch --help` and `make-dataset` do not pay for
importing torch. A `TaggerError` (bad input) becomes one line on stderr and exit status 2, with no
traceback.

OpenMP threads that wait by spinning lose most of their speed when another process keeps a core
busy (docs/speed.md, "Shared CPUs"), so the command line asks for OMP_WAIT_POLICY=PASSIVE unless
the user set OMP_WAIT_POLICY. The OpenMP runtime reads it once, when torch is imported, so it is
set here, before any verb imports torch (tagger_torch/__init__ imports no torch). Each invocation
also keeps the memory it frees for reuse instead of returning it to the system (memory.py: a training
step would otherwise fault its buffers in again every step).
"""
import importlib
import os
import sys

import click

from .errors import TaggerError
from .memory import keep_freed_memory

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any import of torch (none above)

# verb -> ("module:attribute" of its click.Command, its one-line help for `tagger-torch --help`)
COMMANDS = {
    "make-dataset": ("tagger_torch.commands.data:make_dataset",
                     "Generate data set NAME (shapes, freq20-1mnist, freq20-2mnist) as the release did."),
    "data-summary": ("tagger_torch.commands.data:data_summary",
                     "Describe the data file PATH (the release's layout)."),
    "init-params": ("tagger_torch.commands.audit:init_params",
                    "Write the release's initial parameters (SPEC 7), one array per name."),
    "trace": ("tagger_torch.commands.audit:trace",
              "Run one forward pass and save every intermediate."),
    "train": ("tagger_torch.commands.train:train_command",
              "Train on an HDF5 data set with the release's protocol (SPEC 7)."),
    "evaluate": ("tagger_torch.commands.evaluate:evaluate_command",
                 "Score a trained model per iteration (Table 1)."),
    "visualize": ("tagger_torch.commands.visualize:visualize_command",
                  "Draw Tagger's groups and reconstructions per iteration (Figure 4)."),
    "calibrate": ("tagger_torch.commands.calibrate:calibrate_command",
                  "Estimate a BatchNorm model's population statistics (for one example at a time)."),
    "segment": ("tagger_torch.commands.segment:segment_command",
                "Group your own images or arrays with a trained model: masks, reconstructions, a picture."),
    "bench": ("tagger_torch.commands.bench:bench_command",
              "Time training steps against the matmul rate."),
    "reproduce": ("tagger_torch.commands.reproduce:reproduce_command",
                  "The paper's tables: train, follow and publish the runs of the plan."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        """The verbs with their one-line help from COMMANDS, without importing their modules."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

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
    keep_freed_memory()

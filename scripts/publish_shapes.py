#!/usr/bin/env python3
"""Publish a finished Shapes run as results/NAME/ and rewrite results/README.md (Table 1 beside the paper's).

    .venv/bin/python scripts/publish_shapes.py RUN_DIR shapes-ln [--note TEXT]   # or shapes-bn
    .venv/bin/python scripts/publish_shapes.py --complete shapes-ln              # the run directory is gone
    .venv/bin/python scripts/publish_shapes.py --readme-only                     # README from what is there

RUN_DIR is a run directory of `tagger-torch train` that has finished its epochs. The data files default
to datasets/: the standard Shapes file (`make data`) and the 2- and 4-shape files
(`tagger-torch make-dataset shapes --n-shapes 2 --out datasets/shapes50k_20x20_2shapes.h5`, and 4).
--complete NAME finishes results/NAME from its own config.json, metrics.jsonl and params-fp16.npz, for a
run whose directory is gone (fp16_change.json then holds the checks that need no float32 weights).
What is written, and why rerunning is cheap: tagger_torch/publish.py; docs/training.md "Publishing a run".
"""
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the tagger-torch command line does, before torch loads

import click  # noqa: E402

from tagger_torch.errors import TaggerError  # noqa: E402
from tagger_torch.pretrained import PRETRAINED  # noqa: E402
from tagger_torch.publish import DataFiles, publish_run  # noqa: E402
from tagger_torch.results_readme import collect, update_readme_section, write_results_readme  # noqa: E402

DATA = DataFiles()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run", required=False)
@click.argument("name", required=False, type=click.Choice(list(PRETRAINED)))
@click.option("--results", default="results", show_default=True, help="The results folder to write into.")
@click.option("--shapes", default=DATA.shapes, show_default=True, help="The standard Shapes file.")
@click.option("--shapes2", default=DATA.shapes2, show_default=True,
              help="Shapes with 2 shapes per image (make-dataset shapes --n-shapes 2).")
@click.option("--shapes4", default=DATA.shapes4, show_default=True,
              help="Shapes with 4 shapes per image (make-dataset shapes --n-shapes 4).")
@click.option("--seed", default=0, show_default=True, help="Seed of the evaluations' noise and m0 draws.")
@click.option("--iterations", default=5, show_default=True, help="T at evaluation (the paper: 5).")
@click.option("--threads", default=1, show_default=True, help="CPU threads of the evaluations (1: reproducible).")
@click.option("--note", type=str, help="A sentence on how the run was trained, for the README (kept on reruns).")
@click.option("--allow-unfinished", is_flag=True, help="Publish a run that has not finished its epochs (dry runs).")
@click.option("--force", is_flag=True, help="Recompute every file, also those whose inputs are unchanged.")
@click.option("--complete", type=click.Choice(list(PRETRAINED)), metavar="NAME",
              help="Complete RESULTS/NAME from its own files, the run directory being gone.")
@click.option("--readme-only", is_flag=True, help="Only rewrite RESULTS/README.md from what is published there.")
@click.option("--update-readme", type=str, metavar="README.md",
              help="Also put Table 1a into this file between <!-- table1:begin --> and <!-- table1:end -->.")
def main(run, name, results, shapes, shapes2, shapes4, seed, iterations, threads, note, allow_unfinished, force,
         complete, readme_only, update_readme):
    """Publish RUN (a finished run directory) as RESULTS/NAME, then write RESULTS/README.md."""
    try:
        if not readme_only:
            if complete is not None:
                if run is not None:
                    raise TaggerError("--complete NAME takes no RUN_DIR")
                name = complete
            elif run is None or name is None:
                raise TaggerError(f"give RUN_DIR and NAME ({', '.join(PRETRAINED)}), --complete NAME or --readme-only")
            publish_run(run, name, results, DataFiles(shapes, shapes2, shapes4), seed=seed, iterations=iterations,
                        threads=threads, note=note, allow_unfinished=allow_unfinished, force=force,
                        progress=sys.stderr.isatty(), echo=click.echo)
        click.echo(f"wrote {write_results_readme(results)}")
        if update_readme is not None:
            update_readme_section(update_readme, collect(results))
            click.echo(f"updated the Table 1 section of {update_readme}")
    except TaggerError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(TaggerError.exit_code)


if __name__ == "__main__":
    main()

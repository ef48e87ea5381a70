"""`python -m tagger_reference`: the reference's command line (see tagger_reference.cli)."""
from .cli import main

main(prog_name="python -m tagger_reference")

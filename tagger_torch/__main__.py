"""`python -m tagger_torch`: the same command line as `tagger-torch` (tagger_torch.cli)."""
from .cli import main

main(prog_name="python -m tagger_torch")

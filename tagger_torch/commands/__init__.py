"""The command layer of `tagger-torch`: one module of click wrappers per verb (`tagger_torch.cli`
imports each only when its verb runs) and the options they share (`options.py`)."""

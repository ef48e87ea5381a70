"""Training any model of the registry (tagger_torch.models) with the release's protocol (SPEC 7).

    streams.py   which examples each step sees: the unlabelled and labelled streams, on the device
    step.py      one step (the model's cost, backward, Adam) under a precision policy; epoch sums
    trainer.py   the Trainer: set-up, epochs, validation, checkpoints, signals; `run_training`
    rundir.py    the run directory: its files, the checkpoint and its older forms, `load_model`
"""
from .trainer import Trainer, run_training

__all__ = ["Trainer", "run_training"]

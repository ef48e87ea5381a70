"""The NumPy reference of Tagger (Greff et al., NIPS 2016): Algorithm 1 in float64 with explicit loops.

The obviously-right twin of `tagger_torch`: functions with the same names compute the same things,
and the parity suite compares them element by element. See docs/reference.md.
"""
from .costs import (ami_score, ari_score, class_probabilities, classification_cost, classification_error,
                    denoising_cost)
from .gradcheck import numerical_grad
from .params import adam_step, check_params, init_params, load_params, param_shapes, save_params
from .tagger import (IterationOutput, combinator, corrupt, delta_z, forward, group_likelihood, initial_state,
                     ladder, normalize, pos, tag_iteration, training_cost)

__all__ = [
    "corrupt", "pos", "initial_state", "group_likelihood", "delta_z", "normalize", "combinator", "ladder",
    "tag_iteration", "IterationOutput", "forward", "training_cost", "denoising_cost", "class_probabilities",
    "classification_cost", "classification_error", "ami_score", "ari_score", "init_params", "param_shapes",
    "check_params", "load_params", "save_params", "adam_step", "numerical_grad",
]

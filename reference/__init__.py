"""The NumPy reference of Tagger (Greff et al., NIPS 2016): Algorithm 1 in float64 with explicit loops.

The obviously-right twin of `tagger_torch`: modules and functions with the same names compute the
same things (ops, ladder, tagger, costs, metrics, params, optim; `model.forward` is the trace of
`tagger_torch.model.Tagger`), and the parity suite compares them element by element.
See docs/reference.md.
"""
from .costs import class_probabilities, classification_cost, classification_error, denoising_cost
from .gradcheck import numerical_grad
from .ladder import combinator, combinator_kind, init_ladder, ladder, ladder_shapes
from .metrics import ami_score, ari_score
from .model import forward, training_cost
from .ops import binary_cross_entropy, normalize, pos, soft_clip
from .optim import adam_step
from .params import init_params, init_tagger, param_shapes, tagger_shapes
from .tagger import LADDER, IterationOutput, Mapping, corrupt, delta_z, group_likelihood, initial_state, tag_iteration

__all__ = [
    "corrupt", "pos", "soft_clip", "binary_cross_entropy", "initial_state", "group_likelihood", "delta_z",
    "normalize", "combinator", "combinator_kind", "ladder", "ladder_shapes", "init_ladder", "Mapping", "LADDER",
    "tag_iteration", "IterationOutput", "forward", "training_cost", "denoising_cost", "class_probabilities",
    "classification_cost", "classification_error", "ami_score", "ari_score", "init_params", "init_tagger",
    "param_shapes", "tagger_shapes", "adam_step", "numerical_grad",
]

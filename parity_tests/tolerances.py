"""Every tolerance of the parity suite, in one table.

An array passes when |torch - reference| <= atol + rtol |reference| element by element (numpy's
allclose), at every iteration. The reference runs in float64 on the CPU. `python -m parity_tests.measure`
prints the observed errors (docs/parity.md lists them); the bounds below were set from those runs.

float64 (CPU and CUDA): SPEC's 1e-10, relative where values are large. Observed max abs errors are
    <= 5e-13 over all cases: the two implementations sum in different orders (BLAS vs loops), and the
    error grows with T and through the BatchNorms of few rows (B = 1).
float32: the port computes in float32 from the same float32 numbers the reference gets in float64. The
    errors are the float32 rounding (2^-24 = 6e-8 relative per operation) amplified by the map itself:
    `measure.py` shows the float64 reference moves by the same order when its inputs and parameters
    are jittered by 2^-24 relative ("sensitivity" table), up to ~1e-4 for z in the B = 1 and deep
    B = 100 cases, where BatchNorm over few rows and 3-5 iterations amplify most. Each float32 bound is
    about 10x the largest error observed on any case on the CPU, so rounding that differs on another
    BLAS or on a GPU (other summation orders, same float32 unit roundoff) still passes while a wrong
    equation (errors of order 1e-2..1, see test_a_wrong_equation_is_caught) cannot. The CUDA cases use
    the same bounds; they have not yet run on a GPU (docs/parity.md).
"""
import math
from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np


@dataclass(frozen=True)
class Tol:
    atol: float
    rtol: float


_F64 = Tol(1e-10, 1e-10)

# quantity -> {dtype: Tol}; the same bounds on CPU and CUDA (TF32 is switched off while comparing).
TABLE: Dict[str, Dict[str, Tol]] = {
    # z (T+1,K,B,D): z0 exact; then c1 BN(u0 @ z_u_W) + b1 (sigmoid for binary inputs). The most
    # amplified quantity: 4 normalisations and the whole Ladder per iteration. Max float32 seen 1.7e-4.
    "z": {"float64": _F64, "float32": Tol(2e-3, 1e-4)},
    # m (T+1,K,B,D): softmax over K of c2 BN(u0 @ m_u_W); in [0, 1]. Max float32 seen 9.4e-5.
    "m": {"float64": _F64, "float32": Tol(1e-3, 1e-4)},
    # m_lh (T,K,B,D): L(m) of the previous z, a softmax in [0, 1]. Max float32 seen 1.3e-5.
    "m_lh": {"float64": _F64, "float32": Tol(2e-4, 1e-4)},
    # delta_z (T,K,B,D): binary r m / (xi - 1 + x~) can be large where xi is near 0 or 1 (hence rtol).
    # Max float32 seen 1.0e-4.
    "delta_z": {"float64": _F64, "float32": Tol(1e-3, 1e-4)},
    # y (T,K,B,HL): the Ladder's softmax top, in [0, 1]. Max float32 seen 3.8e-5.
    "y": {"float64": _F64, "float32": Tol(5e-4, 1e-4)},
    # denoising_cost (T,): a mean over B*D elements, which averages rounding. Max float32 seen 5e-6.
    "denoising_cost": {"float64": _F64, "float32": Tol(5e-5, 1e-5)},
    # class_cost (T,): mean cross-entropy of P. Max float32 seen 2.9e-6.
    "class_cost": {"float64": _F64, "float32": Tol(5e-5, 1e-5)},
    # class_error (T,) in %: discrete. Equal up to rounding of the mean, plus 100/B for each example
    # whose top classes are tied within y's tolerance (helpers.class_error_slack): there rounding may
    # flip the ranking. Observed: equal in every case.
    "class_error": {"float64": _F64, "float32": Tol(1e-4, 0.0)},
}

# torch autograd (float64) vs the reference's central differences (eps 1e-6, float64) of the training
# cost, every element of every parameter. Central differences err by eps^2 f''' / 6 (~1e-11 here)
# plus rounding |f| 1e-16 / eps (~1e-10); observed max abs error 2.1e-9, so 1e-7 leaves 50x.
GRADIENT = Tol(1e-7, 1e-6)

# BlocksAdam vs adam_step after 3 steps. float64: same formula, different association (lerp):
# observed 5.6e-17. float32: the parameters' own rounding, 2^-24 |p| per step: observed 2.7e-7 on
# |p| up to ~3.
ADAM = {"float64": Tol(1e-14, 1e-14), "float32": Tol(1e-7, 1e-6)}


# bf16 autocast against fp32, the denoising cost of a forward pass (tests/test_precision.py): each
# product's operands are rounded to bf16's 8 significant bits (2^-9 relative) on every CPU, and the
# products are summed in float32 whether the CPU has bf16 dot-product instructions or torch converts
# the operands, so the error does not depend on the instruction set. Observed 8e-5 relative with
# AVX2 kernels and with ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE, on 1 and 2 threads.
BF16_COST = Tol(0.0, 1e-2)

# DDP (tests/test_distributed.py), float32: `world` gloo ranks after one training step against one
# process that adds the same ranks' gradients g_r and takes one Adam step. Both sides compute each
# g_r with the same kernels on the same number of threads (the test runs both on one thread: BLAS
# splits its sums by thread, so a different thread count alone moves W by up to 4.5e-6 = 2e-3 lr).
# What may still differ is the sum over ranks: DDP's all-reduce adds g_r / world in its own order
# (buckets, ring), the test adds g_r in rank order. Each side's mean is within (world - 1) 2^-24
# sum_r |g_r| / world of the exact one (halving is exact and a + b = b + a, so with 2 ranks the two
# are equal bit for bit; observed: every parameter equal). Adam's first step from zero moments
# moves a parameter by lr g / (|g| + e), e = epsilon / sqrt(beta2) = 3.2e-7 (BlocksAdam's own
# names): about +-lr whatever the rounding where |g| >> e, but with slope lr e / (|g| + e)^2, up to
# lr / e = 6300 at g = 0, where a gradient that is zero up to rounding may move either way by up to
# ~lr. So per element: |ddp - one process| <= ADAM float32 (the parameter's own rounding)
# + lr dg e / (max(|g| - dg, 0) + e)^2, dg = the two sides' mean-rounding bounds added.
def ddp_step_tolerance(param: np.ndarray, grads: Sequence[np.ndarray], lr: float, epsilon: float = 1e-8,
                       beta2: float = 0.001) -> np.ndarray:
    """Per-element bound on |DDP - one process| for `param` after one float32 Adam step (see above);
    grads: that parameter's gradient on each rank."""
    world = len(grads)
    g = sum(np.asarray(r, np.float64) for r in grads) / world
    dg = 2 * (world - 1) * 2.0 ** -24 * sum(np.abs(np.asarray(r, np.float64)) for r in grads) / world
    e = epsilon / math.sqrt(beta2)
    adam = ADAM["float32"]
    return adam.atol + adam.rtol * np.abs(param) + lr * dg * e / (np.maximum(np.abs(g) - dg, 0) + e) ** 2


def tolerances(dtype: str) -> Dict[str, Tol]:
    """The forward-pass tolerances for torch in `dtype` ('float32' or 'float64'), CPU or CUDA."""
    return {name: row[dtype] for name, row in TABLE.items()}


def adam_tolerance(dtype: str) -> Tol:
    return ADAM[dtype]

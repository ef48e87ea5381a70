"""Every tolerance of the parity suite, in one table (checked by `compare.assert_close`).

An array passes when |torch - reference| <= atol + rtol |reference| element by element (numpy's
allclose, `Tol`), at every iteration; the comparisons against the release are normwise
(`Normwise`). The reference runs in float64 on the CPU. `python -m parity_tests.measure` prints the
observed errors (docs/parity.md lists them); the bounds below were set from those runs.

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
from typing import Dict, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class Tol:
    """Per element: |torch - reference| <= atol + rtol |reference|."""

    atol: float
    rtol: float


@dataclass(frozen=True)
class Normwise:
    """max |got - reference| / scale <= bound over the array compared; scale None: max |reference|."""

    bound: float
    scale: Optional[float] = None


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
    # whose top classes are tied within y's tolerance (compare.class_error_slack): there rounding may
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

# ----------------------------------------------------------------------------------------------
# Against the release itself: test_parity_release.py on parity_tests/release/ (its README.md).
# Error measure (normwise): max |got - golden| / scale per quantity and per iteration; scale = max
# |golden| of that array, except where noted. Observed values: docs/parity.md, "Against the release
# itself" (CPU, 2 threads; 1 thread passes too).
# ----------------------------------------------------------------------------------------------
# golden trace file -> input type -> bound, for z, m, m_lh, delta_z, y, denoising_cost, class_cost.
RELEASE_TRACE: Dict[str, Dict[str, float]] = {
    # float64 twins vs the release with only its float32 artefacts removed: the same equations in
    # float64, summed in other orders. Observed <= 4.9e-13; the bound is the 1e-11.
    "release_trace_f64clean": {"binary": 1e-11, "continuous": 1e-11},
    # float64 twins vs the unmodified release under floatX=float64, which still computes in float32:
    # binary: its cross-entropy casts to float32, so L(m)'s losses (up to -log 1e-4 = 9.2) carry
    #   float32 rounding, ~9.2 x 6e-8 = 5e-7 on m_lh (observed 1.2e-6 normwise), which the network
    #   amplifies over T iterations as it does any rounding (sensitivity table) to 6.5e-6 in z;
    #   plus the clamped sigmoid (z = 1.0 exactly above 19, off by <= 5.6e-9). 1e-4 = 15x observed.
    # continuous: no float32 cross-entropy; only v, pos(v), v^2, log v and the constants are float32
    #   (6e-8 relative each): observed 2.1e-8 (denoising_cost, through log v). 2e-7 = 10x.
    # A wrong equation moves these quantities by 1e-2 to 1.
    "release_trace": {"binary": 1e-4, "continuous": 2e-7},
    # tagger-torch float32 vs the release under floatX=float32 (how the authors ran it): two float32
    # programs summing in different orders, each off the exact map by float32 rounding amplified as in
    # the float32 table above. Observed 2.2e-5 (binary, m) and 3.1e-6 (continuous, y); 14x, 16x.
    "release_trace_float32": {"binary": 3e-4, "continuous": 5e-5},
}
# class_error (%) is discrete: it must be equal in every comparison (observed: equal).
RELEASE_CLASS_ERROR = 0.0
# Case 5a, d training cost / d parameter, scale = the largest gradient over all parameters.
# float64 autograd vs f64clean_grads: the 1e-10 (observed 1.4e-13). float32 autograd vs the
# float32 release: float32 rounding of the forward pass carried through the backward pass (observed
# 4.5e-5); 5e-4 is ~10x and far below a wrong equation's ~1e-2. The reference has no analytic
# gradient: its central differences (eps 1e-6) at a few elements err by eps^2 f'''/6 plus rounding
# |f| 1e-16 / eps (observed 3.3e-8 of the largest gradient, 8.6e-9 absolute); 3e-7 is ~10x.
RELEASE_GRADIENT = {"float64": 1e-10, "float32": 5e-4, "finite differences": 3e-7}
# Three Adam steps vs f64clean_params_after_step1/2/3, scale = the largest parameter change. Blocks'
# Adam divides each element's mean gradient by its RMS, so an element's step carries its gradient's
# *relative* error: tiny for large gradients, up to ~1e-13 x (largest / own gradient) for small ones.
# Observed 2.7e-10, 1.3e-10, 1.4e-9 after steps 1, 2, 3 (not within the 1e-10): 2e-8 is
# ~14x, while any change to the update rule or the gradients moves steps by >= 1e-6 of lr.
RELEASE_ADAM = 2e-8
# One Adam step from the release's own gradients (f64clean_grads) vs f64clean_params_after_step1, scale =
# the largest parameter change: the update rule alone, without the gradients' rounding above. The
# issue's 1e-10. Observed: reference 0, torch 1.4e-13 (BlocksAdam's foreach ops associate differently).
RELEASE_ADAM_RULE = 1e-10
# The training cost before steps 1-3 and after step 3, relative to its value. Before the first step
# it is the forward pass (observed 1.5e-16); afterwards it inherits the parameters' errors above
# (observed 2.9e-12 after three steps). 3e-11 is 10x.
RELEASE_TRAIN_COST = 3e-11
# float32 Adam steps vs float32_params_after_*, per element, in units of lr x steps taken. Blocks'
# Adam moves each element by about lr per step whatever its gradient's size, so where float32
# rounding decides the sign of a near-zero gradient the two runs part by up to 2 lr per step (and
# the parts feed the next gradients). Observed 0.064, 0.032, 0.16 after steps 1, 2, 3 (0.47 lr after
# three steps); 1.0 fails a run whose steps go the other way (2 after one step). The float32
# gradients above are the sharp test.
RELEASE_ADAM_FLOAT32 = 1.0
# AMI per sample vs the release's (scikit-learn 0.17.1 accumulates the expected MI in C float):
# absolute error, the 1e-6 (observed 4.8e-7; both AMIs here compute in float64).
RELEASE_AMI = 1e-6

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
from dataclasses import dataclass
from typing import Dict


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


def tolerances(dtype: str) -> Dict[str, Tol]:
    """The forward-pass tolerances for torch in `dtype` ('float32' or 'float64'), CPU or CUDA."""
    return {name: row[dtype] for name, row in TABLE.items()}


def adam_tolerance(dtype: str) -> Tol:
    return ADAM[dtype]

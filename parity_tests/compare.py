"""The one comparison of the parity suite (and of tests/test_distributed.py): an array against its
reference within a bound of `tolerances.py`, failing with one message that names what was compared,
the quantity, where (iteration, state, step), the error and the bound.

A bound is one of
* `Tol(atol, rtol)`: per element, |got - ref| <= atol + rtol |ref| (numpy's allclose);
* `Normwise(bound, scale)`: max |got - ref| / scale <= bound, scale = max |ref| unless given;
* an array of per-element bounds on |got - ref| (e.g. tolerances.ddp_step_tolerance).
"""
from __future__ import annotations

from typing import Dict, Tuple, Union

import numpy as np

import tagger_reference as reference

from .cases import TRACE_ARRAYS, Case, Inputs
from .tolerances import Normwise, Tol, tolerances

Bound = Union[Tol, Normwise, np.ndarray]


def normwise(got, ref, scale=None) -> float:
    """max |got - ref| / scale, scale = max |ref| by default (1 where ref is all zero)."""
    ref = np.asarray(ref, dtype=np.float64)
    if scale is None:
        scale = float(np.abs(ref).max(initial=0.0)) or 1.0
    return float(np.abs(np.asarray(got, dtype=np.float64) - ref).max(initial=0.0) / scale)


def errors(got, ref, tol: Tol) -> Tuple[float, float]:
    """(max abs error, max rel error over the elements where |ref| > tol.atol)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    diff = np.abs(got - ref)
    big = np.abs(ref) > tol.atol
    return float(diff.max(initial=0.0)), float((diff[big] / np.abs(ref[big])).max(initial=0.0))


def ratio(got, ref, bound: Bound, slack: float = 0.0) -> float:
    """The largest error / allowed error (<= 1 passes; NaN counts as failing)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if isinstance(bound, Normwise):
        if bound.bound == 0:
            return 0.0 if np.array_equal(got, ref) else np.inf
        return normwise(got, ref, bound.scale) / bound.bound
    allowed = (bound.atol + slack + bound.rtol * np.abs(ref)) if isinstance(bound, Tol) else np.asarray(bound) + slack
    diff = np.abs(got - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(diff == 0, 0.0, diff / allowed)
    return float(np.nan_to_num(r, nan=np.inf).max(initial=0.0))


def _report(got: np.ndarray, ref: np.ndarray, bound: Bound, slack: float) -> str:
    if isinstance(bound, Normwise):
        scale = "" if bound.scale is None else f", scale {bound.scale:.3g}"
        return f"normwise error {normwise(got, ref, bound.scale):.3g} > bound {bound.bound:.3g}{scale}"
    diff = np.abs(got - ref)
    worst = np.unravel_index(np.nan_to_num(diff, nan=np.inf).argmax(), diff.shape) if diff.size else ()
    where = f"; worst at {tuple(int(i) for i in worst)}: {got[worst]:.6g} vs {ref[worst]:.6g}" if diff.ndim else ""
    if isinstance(bound, Tol):
        abs_err, rel_err = errors(got, ref, bound)
        return (f"max abs err {abs_err:.3g}, max rel err {rel_err:.3g}{where} "
                f"(tolerance atol {bound.atol + slack:.3g}, rtol {bound.rtol:.3g})")
    excess = diff - np.asarray(bound)
    return (f"{int((excess > slack).sum())} element(s) beyond their bound, worst by {float(excess.max()):.3g}"
            f"{where}")


def assert_close(got, ref, bound: Bound, *, quantity: str, where: str = "", context: str = "",
                 slack: float = 0.0) -> None:
    """AssertionError '{context}: {quantity} at {where}: {error and bound}' unless got is within
    `bound` (plus `slack` on the absolute error) of ref, element by element or normwise."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    head = f"{context}: {quantity}" if context else quantity
    head += f" at {where}" if where else ""
    if got.shape != ref.shape:
        raise AssertionError(f"{head}: shape {got.shape} != {ref.shape}")
    if not ratio(got, ref, bound, slack) <= 1:
        raise AssertionError(f"{head}: {_report(got, ref, bound, slack)}")


def class_error_slack(ref_trace: Dict[str, np.ndarray], labels: np.ndarray, tol_p: Tol) -> np.ndarray:
    """(T,) how far class_error may move: 100/B for each example whose ranking of P decides its error
    (the top-M classes, M objects) by a margin within P's tolerance, where rounding may flip it."""
    slack = []
    for y in ref_trace["y"]:  # (K, B, HL)
        P = reference.class_probabilities(y)  # (B, C)
        top = -np.sort(-P, axis=1)[:, : labels.shape[1] + 1]
        margins = np.abs(np.diff(top, axis=1)).min(axis=1)
        close = margins <= 2 * (tol_p.atol + tol_p.rtol * top.max(axis=1))
        slack.append(100.0 * close.sum() / P.shape[0])
    return np.array(slack)


def compare_trace(case: Case, inputs: Inputs, ref: Dict[str, np.ndarray], got: Dict[str, np.ndarray],
                  device: str, dtype: str) -> None:
    """Every trace array of every iteration within its tolerance (`tolerances.TABLE`).

    Checked in the order of computation (z[t], m[t], then iteration t's m_lh, delta_z, y and costs),
    so the first failure names the quantity where the two implementations part. z and m are indexed
    by state: index 0 is the initial state, index t the state after t iterations.
    """
    table = tolerances(dtype)
    context = f"{case.name} [{device} {dtype}]"
    assert set(got) == set(ref), f"{context}: trace arrays differ: {sorted(got)} vs {sorted(ref)}"
    for name in ref:
        assert got[name].shape == ref[name].shape, f"{context}: {name} shape {got[name].shape} != {ref[name].shape}"
    slack = class_error_slack(ref, inputs.labels, table["y"]) if "class_error" in ref else None
    for t in range(len(ref["denoising_cost"]) + 1):
        for name in TRACE_ARRAYS:
            if name not in ref or t >= len(ref[name]):
                continue
            where = f"state {t} (after {t} iterations)" if name in ("z", "m") else f"iteration {t}"
            assert_close(got[name][t], ref[name][t], table[name], quantity=name, where=where, context=context,
                         slack=slack[t] if name == "class_error" else 0.0)

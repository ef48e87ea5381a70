"""Measure the parity errors that `tolerances.py` bounds, and print them as Markdown tables.

    python -m parity_tests.measure [--device cpu|cuda] [--dtype float32 float64]

For every case of cases.CASES and every dtype: the max abs error (over all iterations and elements)
of each trace array against the float64 reference, and the largest ratio error / tolerance (< 1 passes).
Also, for float32, the *sensitivity* of each case: how far the float64 reference itself moves when every
parameter and input is multiplied by (1 + 2^-24 N(0,1)), i.e. a float32 rounding's worth of noise. A
float32 port cannot be expected to do better than that; the tolerances are set above both.
The gradient and optimiser errors are printed too (parity_tests/test_parity_grad.py's cases).

    python -m parity_tests.measure --release

prints instead the errors against the release's own vectors (test_parity_release.py, normwise).
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Dict

import numpy as np
import torch

from .cases import CASES, TRACE_ARRAYS, build, run_reference, run_torch
from .compare import errors, normwise, ratio
from .tolerances import tolerances


def sensitivity(case, inputs, repeats: int = 3) -> Dict[str, float]:
    """Max abs change of the float64 reference under float32-rounding-sized relative noise."""
    rng = np.random.RandomState(123)
    ref = run_reference(case, inputs)

    def jitter(a):
        return None if a is None else a * (1 + 2.0 ** -24 * rng.randn(*np.shape(a)))

    worst = {name: 0.0 for name in ref}
    for _ in range(repeats):
        moved = dataclasses.replace(
            inputs, params={k: jitter(np.float64(v)) for k, v in inputs.params.items()},
            x=inputs.x if case.config.input_type == "binary" else jitter(np.float64(inputs.x)),
            m_init=jitter(np.float64(inputs.m_init)),
            corruption=inputs.corruption if case.config.input_type == "binary" else jitter(inputs.corruption))
        out = run_reference(case, moved)
        for name in ref:
            if name != "class_error":
                worst[name] = max(worst[name], float(np.abs(out[name] - ref[name]).max()))
    return worst


def measure(device: str, dtypes) -> None:
    for dtype in dtypes:
        table = tolerances(dtype)
        print(f"\n### {device} {dtype}: max abs error per quantity (all iterations); last column: max error/tolerance\n")
        print("| case | " + " | ".join(TRACE_ARRAYS) + " | worst ratio |")
        print("|---" * (len(TRACE_ARRAYS) + 2) + "|")
        overall = {name: 0.0 for name in TRACE_ARRAYS}
        for case in CASES:
            inputs = build(case)
            ref = run_reference(case, inputs)
            got = run_torch(case, inputs, getattr(torch, dtype), device)
            cells, worst = [], 0.0
            for name in TRACE_ARRAYS:
                if name not in ref:
                    cells.append("-")
                    continue
                tol = table[name]
                abs_err = errors(got[name], ref[name], tol)[0]
                overall[name] = max(overall[name], abs_err)
                worst = max(worst, ratio(got[name], ref[name], tol))
                cells.append(f"{abs_err:.1e}")
            print(f"| {case.name} | " + " | ".join(cells) + f" | {worst:.2f} |")
        print("| **max** | " + " | ".join(f"**{overall[n]:.1e}**" for n in TRACE_ARRAYS) + " | |")
        print("| tolerance atol / rtol | " + " | ".join(f"{table[n].atol:.0e} / {table[n].rtol:.0e}" for n in TRACE_ARRAYS) + " | |")
    if "float32" in dtypes and device == "cpu":
        print("\n### float64 reference moved by float32-rounding noise (sensitivity), max abs change\n")
        print("| case | " + " | ".join(TRACE_ARRAYS[:-1]) + " |")
        print("|---" * len(TRACE_ARRAYS) + "|")
        for case in CASES:
            s = sensitivity(case, build(case))
            print(f"| {case.name} | " + " | ".join(f"{s[n]:.1e}" if n in s else "-" for n in TRACE_ARRAYS[:-1]) + " |")
    from .test_parity_grad import GRAD_CASES, gradient_errors
    from .test_parity_optim import adam_errors
    print("\n### gradients (torch autograd vs reference central differences, float64)\n")
    for case in GRAD_CASES:
        abs_err, rel_err = gradient_errors(case, device)
        print(f"- {case.name}: max abs err {abs_err:.1e}, max err / (|g| + 1e-3) {rel_err:.1e}")
    print("\n### BlocksAdam vs reference adam_step, 3 steps\n")
    for dtype in dtypes:
        for fused in (False, True):
            print(f"- {device} {dtype}{' fused' if fused else ''}: max abs param difference "
                  f"{adam_errors(getattr(torch, dtype), device, fused):.1e}")


def measure_release() -> None:
    """Max normwise error per golden file and run (test_parity_release.py), its bound and the ratio."""
    from . import test_parity_release as rel

    print("\n### Forward pass (B = 100; stored examples 0-24): max normwise error per quantity over all "
          "iterations; class_error: max abs difference\n")
    print("| case | golden file | run | " + " | ".join(TRACE_ARRAYS) + " | bound | worst ratio |")
    print("|---" * (len(TRACE_ARRAYS) + 5) + "|")
    for case, golden, run in rel.TRACE_TESTS:
        worst, worst_ratio, bound = {}, 0.0, None
        for c in rel.trace_comparisons(case, golden, run):
            err = normwise(c.got, c.ref, c.scale)
            worst[c.quantity] = max(worst.get(c.quantity, 0.0), err)
            if c.quantity == "class_error":
                worst_ratio = worst_ratio if err <= c.bound else float("inf")
            else:
                bound, worst_ratio = c.bound, max(worst_ratio, err / c.bound)
        cells = [f"{worst[n]:.1e}" if n in worst else "-" for n in TRACE_ARRAYS]
        print(f"| {case.split('_')[0]} | {golden} | {run} | " + " | ".join(cells) + f" | {bound:.0e} | {worst_ratio:.2f} |")

    print("\n### Training (case 5a) and AMI: max normwise error over parameters, iterations or samples\n")
    print("| golden file | run | scale | max error | bound | ratio |")
    print("|---|---|---|---|---|---|")
    groups = [rel.gradient_comparisons("float64"), rel.gradient_comparisons("float32"),
              rel.finite_difference_comparisons(), rel.adam_comparisons("torch float64"),
              rel.adam_comparisons("reference"), rel.adam_comparisons("torch float32"),
              rel.adam_rule_comparisons("torch float64"), rel.adam_rule_comparisons("reference"),
              rel.train_cost_comparisons("torch float64"), rel.train_cost_comparisons("reference"),
              rel.ami_comparisons("tagger_torch"), rel.ami_comparisons("tagger_reference")]
    rows: Dict[tuple, list] = {}
    for group in groups:
        for c in group:
            scale = c.where.partition("(scale: ")[2].rstrip(")") or ("1 (absolute)" if c.scale else "max abs golden")
            row = rows.setdefault((c.golden.split("/")[1], c.run, scale), [0.0, c.bound])
            row[0] = max(row[0], normwise(c.got, c.ref, c.scale))
    for (golden, run, scale), (err, bound) in rows.items():
        print(f"| {golden} | {run} | {scale} | {err:.1e} | {bound:.0e} | {err / bound:.2f} |")
    for case in rel.FORWARD_CASES:
        for twin in ("tagger_torch", "tagger_reference"):
            rel.test_init_params_bit_identical_to_release(case, twin)
    print("\nInitial parameters (cases 1 and 3, both twins): bit-identical to init_params.npz.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    parser.add_argument("--release", action="store_true", help="the errors against the release's own vectors")
    args = parser.parse_args()
    if args.release:
        measure_release()
    else:
        measure(args.device, args.dtype)


if __name__ == "__main__":
    main()

"""Against the release itself: both twins vs what the authors' Theano code computed.

parity_tests/release/ holds the release's outputs for fixed parameters, inputs and noise draws (its
README.md says how they were made). Bounds: tolerances.py, section "Against the release itself".

Error measure (`compare.normwise`): max |got - golden| / scale over the array compared (one quantity
at one iteration, one parameter at one step); scale = max |golden| of that array unless a comparison
names another (the largest gradient, the largest parameter change, lr x steps, 1 for AMI).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, NamedTuple, Optional

import numpy as np
import pytest
import torch

import tagger_reference as reference
from tagger_torch import metrics
from tagger_torch.config import load_config
from tagger_torch.model import Tagger
from tagger_torch.optim import BlocksAdam
from tagger_torch.params import init_params

from .cases import TRACE_ARRAYS, Case, Inputs, run_reference, run_torch
from .compare import assert_close
from .tolerances import (RELEASE_ADAM, RELEASE_ADAM_FLOAT32, RELEASE_ADAM_RULE, RELEASE_AMI, RELEASE_CLASS_ERROR, RELEASE_GRADIENT,
                         RELEASE_TRACE, RELEASE_TRAIN_COST, Normwise)

RELEASE = Path(__file__).parent / "release"
FORWARD_CASES = ("case1_binary_bn_corrupted", "case3_continuous_2obj_class")
TRAIN_CASE = "case5a_train_binary"  # its params, x, draws and config are case 1's
# golden trace -> the runs compared with it
TRACE_RUNS = {"release_trace_f64clean": ("reference", "torch float64"),
              "release_trace": ("reference", "torch float64"),
              "release_trace_float32": ("torch float32",)}
STEP_FILES = ("params_after_step1", "params_after_step2", "params_after")  # after Adam steps 1, 2, 3
FD_PARAMS = ("W", "c1", "c2", "f_1_W", "g_0_W", "g_2_a3")  # the reference's finite differences


class Comparison(NamedTuple):
    golden: str  # "case/file.npz"
    run: str  # "reference", "torch float64", ...
    quantity: str
    where: str  # "iteration 2", "after step 1", ...
    got: np.ndarray
    ref: np.ndarray
    bound: float
    scale: Optional[float] = None  # None: max |ref|


def check(c: Comparison) -> None:
    """compare.assert_close, normwise; the message names the golden file, the run, the quantity, where,
    the error and the bound."""
    assert_close(c.got, c.ref, Normwise(c.bound, c.scale), quantity=c.quantity, where=c.where,
                 context=f"{c.golden} [{c.run}]")


def load(case: str, name: str) -> Dict[str, np.ndarray]:
    with np.load(RELEASE / case / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


@lru_cache(maxsize=None)
def forward_case(case: str):
    """(config, cases.Case, cases.Inputs) of a golden case: B = 100, the release's draws."""
    config = load_config(str(RELEASE / case / "config.json"))
    arrays = load(case, "inputs")
    labels = arrays.get("labels")
    inputs = Inputs(load(case, "params"), arrays["x"], arrays["m_init"], arrays["corruption"], labels)
    return config, Case(case, config, batch=len(arrays["x"]), labels=labels is not None), inputs


@lru_cache(maxsize=None)
def forward_run(case: str, run: str) -> Dict[str, np.ndarray]:
    _, run_case, inputs = forward_case(case)
    if run == "reference":
        return run_reference(run_case, inputs)
    return run_torch(run_case, inputs, getattr(torch, run.split()[1]), "cpu")


# ----------------------------------------------------------------------------------------------
# Forward pass: every trace array of every iteration (cases 1 and 3)
# ----------------------------------------------------------------------------------------------
def trace_comparisons(case: str, golden: str, run: str, trace=None) -> Iterator[Comparison]:
    """In the order of computation, as compare.compare_trace. The golden per-element arrays hold the first
    examples of the batch only (release/README.md), so the run's arrays are cut to match."""
    trace = forward_run(case, run) if trace is None else trace
    ref = load(case, golden)
    assert set(ref) <= set(trace), f"{case}/{golden}.npz: {sorted(set(ref) - set(trace))} missing from the {run} trace"
    input_type = forward_case(case)[0].input_type
    for t in range(len(ref["denoising_cost"]) + 1):
        for name in TRACE_ARRAYS:
            if name not in ref or t >= len(ref[name]):
                continue
            golden_t = ref[name][t]
            got = trace[name][t][:, : golden_t.shape[1]] if golden_t.ndim == 3 else trace[name][t]
            bound = RELEASE_CLASS_ERROR if name == "class_error" else RELEASE_TRACE[golden][input_type]
            where = f"state {t} (after {t} iterations)" if name in ("z", "m") else f"iteration {t}"
            yield Comparison(f"{case}/{golden}.npz", run, name, where, got, golden_t, bound)


TRACE_TESTS = [(case, golden, run) for case in FORWARD_CASES for golden, runs in TRACE_RUNS.items() for run in runs]


@pytest.mark.parametrize("case, golden, run", TRACE_TESTS,
                         ids=[f"{c.split('_')[0]}-{g}-{r.replace(' ', '-')}" for c, g, r in TRACE_TESTS])
def test_trace_against_release(case, golden, run):
    for c in trace_comparisons(case, golden, run):
        check(c)


def test_a_wrong_equation_fails_against_the_release(monkeypatch):
    """Not vacuous: a port that "fixes" the s^2 + v^2 quirk of L(m) (SPEC 4a) to s^2 + v fails, and the
    message names the golden file, the quantity and the iteration."""
    import tagger_torch.tagger as port

    def fixed_group_likelihood(x_tilde, z, config, v):
        n = config.input_noise ** 2 + v  # v instead of the release's v^2
        return torch.softmax(-(0.5 * torch.log(n) + (z - x_tilde) ** 2 / (2 * n)), dim=0)

    case = FORWARD_CASES[1]
    _, run_case, inputs = forward_case(case)
    monkeypatch.setattr(port, "group_likelihood", fixed_group_likelihood)
    trace = run_torch(run_case, inputs, torch.float64, "cpu")
    # at iteration 0 every z_k equals z0, so L(m) is uniform whatever n is: the error shows at iteration 1
    message = r"release_trace_f64clean\.npz \[torch float64\]: m_lh at iteration 1: normwise"
    with pytest.raises(AssertionError, match=message):
        for c in trace_comparisons(case, "release_trace_f64clean", "torch float64", trace):
            check(c)


# ----------------------------------------------------------------------------------------------
# Initial parameters (SPEC 7) and AMI (SPEC 6)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("twin", ["tagger_torch", "tagger_reference"])
@pytest.mark.parametrize("case", FORWARD_CASES, ids=lambda c: c.split("_")[0])
def test_init_params_bit_identical_to_release(case, twin):
    config = forward_case(case)[0]
    got = (init_params if twin == "tagger_torch" else reference.init_params)(config, config.seed)
    golden = load(case, "init_params")
    assert sorted(got) == sorted(golden), f"{case}/init_params.npz: names differ [{twin}]"
    for name, value in golden.items():
        mine = np.asarray(got[name])
        assert mine.dtype == value.dtype and mine.shape == value.shape and mine.tobytes() == value.tobytes(), (
            f"{case}/init_params.npz, {name} [{twin}, seed {config.seed}]: not bit-identical "
            f"({mine.dtype}{mine.shape} vs {value.dtype}{value.shape})")


def ami_comparisons(twin: str) -> Iterator[Comparison]:
    """SPEC 6: per-sample AMI of argmax_k m_k against the true masks' argmax, over the pixels whose
    largest true mask value is > 0.9 (samples 0-3 are the edge cases), absolute error."""
    case = FORWARD_CASES[0]
    golden = load(case, "ami")
    score = metrics.ami_score if twin == "tagger_torch" else reference.ami_score
    for t, m in enumerate(golden["m"]):
        yield Comparison(f"{case}/ami.npz", twin, "ami", f"the masks after iteration {t + 1}",
                         score(golden["masks"], m), golden["ami"][t], RELEASE_AMI, scale=1.0)


@pytest.mark.parametrize("twin", ["tagger_torch", "tagger_reference"])
def test_ami_against_release(twin):
    for c in ami_comparisons(twin):
        check(c)


# ----------------------------------------------------------------------------------------------
# Training (case 5a): the cost, its gradients, three Adam steps
# ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def training_run(dtype: str):
    """Three BlocksAdam steps of tagger-torch in `dtype` from case 5a's start, the same x and draws at
    every step; in float64 also the reference's adam_step fed the same gradients (the reference has no
    analytic gradient) and its training cost at each point.

    Returns {'costs': (4,) before steps 1-3 and after step 3, 'denoising0': (T,) before step 1,
    'grads': at the start, 'after': [params after step s]} (+ 'reference_costs', 'reference_after').
    """
    config, _, inputs = forward_case(FORWARD_CASES[0])
    model = Tagger(config, params=inputs.params, dtype=getattr(torch, dtype))
    opt = BlocksAdam(model.parameters(), lr=config.lr)
    x, corruption, m_init = (torch.from_numpy(a) for a in (inputs.x, inputs.corruption, inputs.m_init))
    costs, grads, after = [], [], []
    for step in range(4):
        model.zero_grad()
        # SPEC 6: the training cost, mean over iterations of the corrupted path's denoising cost
        out = model(x, corrupt=False, corruption=corruption, m_init=m_init)
        costs.append(out.cost.item())
        if step == 0:
            denoising0 = out.denoising_cost.detach().double().numpy()
        if step == 3:
            break
        out.cost.backward()
        grads.append({name: p.grad.double().numpy().copy() for name, p in model.named_parameters()})
        opt.step()
        after.append({name: p.detach().double().numpy().copy() for name, p in model.named_parameters()})
    result = dict(costs=np.array(costs), denoising0=denoising0, grads=grads[0], after=after)
    if dtype == "float64":
        params, state = {k: np.array(v, dtype=np.float64) for k, v in inputs.params.items()}, None
        cost = lambda p: reference.training_cost(p, config, inputs.x, inputs.m_init, inputs.corruption)  # noqa: E731
        result["reference_costs"], result["reference_after"] = [cost(params)], []
        for g in grads:
            params, state = reference.adam_step(params, g, state, lr=config.lr)
            result["reference_after"].append(params)
            result["reference_costs"].append(cost(params))
        result["reference_costs"] = np.array(result["reference_costs"])
    return result


def gradient_comparisons(dtype: str) -> Iterator[Comparison]:
    golden_name = "f64clean_grads" if dtype == "float64" else "float32_grads"
    golden = load(TRAIN_CASE, golden_name)
    grads = training_run(dtype)["grads"]
    assert sorted(grads) == sorted(golden)
    largest = max(float(np.abs(g).max()) for g in golden.values())
    for name, g in golden.items():
        yield Comparison(f"{TRAIN_CASE}/{golden_name}.npz", f"torch {dtype}", f"d cost / d {name}",
                         "the start (scale: the largest gradient)", grads[name], g, RELEASE_GRADIENT[dtype], largest)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_against_release(dtype):
    for c in gradient_comparisons(dtype):
        check(c)


def adam_comparisons(run: str) -> Iterator[Comparison]:
    """float64 runs vs f64clean_*, scale: the largest parameter change; torch float32 vs float32_*,
    per element, scale: lr x steps taken."""
    config, _, inputs = forward_case(FORWARD_CASES[0])
    result = training_run("float32" if run == "torch float32" else "float64")
    after = result["reference_after"] if run == "reference" else result["after"]
    for step, file in enumerate(STEP_FILES):
        golden_name = ("float32_" if run == "torch float32" else "f64clean_") + file
        golden = load(TRAIN_CASE, golden_name)
        if run == "torch float32":
            bound, scale, what = RELEASE_ADAM_FLOAT32, config.lr * (step + 1), "lr x steps"
        else:
            bound, what = RELEASE_ADAM, "the largest parameter change"
            scale = max(float(np.abs(np.float64(golden[n]) - inputs.params[n]).max()) for n in golden)
        for name in golden:
            yield Comparison(f"{TRAIN_CASE}/{golden_name}.npz", run, name, f"after step {step + 1} (scale: {what})",
                             after[step][name], golden[name], bound, scale)


@pytest.mark.parametrize("run", ["torch float64", "reference", "torch float32"])
def test_adam_steps_against_release(run):
    for c in adam_comparisons(run):
        check(c)


def adam_rule_comparisons(run: str) -> Iterator[Comparison]:
    """SPEC 7, the update rule alone: one step of `run` ('torch float64' or 'reference') fed the
    release's own gradients (f64clean_grads) vs f64clean_params_after_step1, scale: the largest
    parameter change."""
    config, _, inputs = forward_case(FORWARD_CASES[0])
    grads = load(TRAIN_CASE, "f64clean_grads")
    start = {name: np.asarray(value, dtype=np.float64) for name, value in inputs.params.items()}
    if run == "reference":
        after, _ = reference.adam_step(start, grads, None, lr=config.lr)
    else:
        model = Tagger(config, params=start, dtype=torch.float64)
        for name, p in model.named_parameters():
            p.grad = torch.from_numpy(np.asarray(grads[name], dtype=np.float64))
        BlocksAdam(model.parameters(), lr=config.lr).step()
        after = {name: p.detach().numpy() for name, p in model.named_parameters()}
    golden_name = "f64clean_params_after_step1"
    golden = load(TRAIN_CASE, golden_name)
    scale = max(float(np.abs(np.float64(golden[n]) - start[n]).max()) for n in golden)
    for name in golden:
        yield Comparison(f"{TRAIN_CASE}/{golden_name}.npz", f"{run}, one step from f64clean_grads", name,
                         "step 1 (scale: the largest parameter change)", after[name], golden[name],
                         RELEASE_ADAM_RULE, scale)


@pytest.mark.parametrize("run", ["torch float64", "reference"])
def test_adam_rule_against_release(run):
    for c in adam_rule_comparisons(run):
        check(c)


def train_cost_comparisons(run: str) -> Iterator[Comparison]:
    golden = load(TRAIN_CASE, "f64clean_train_cost")
    result = training_run("float64")
    if run == "reference":
        costs, denoising0 = result["reference_costs"], forward_run(FORWARD_CASES[0], "reference")["denoising_cost"]
    else:
        costs, denoising0 = result["costs"], result["denoising0"]
    file = f"{TRAIN_CASE}/f64clean_train_cost.npz"
    for t, value in enumerate(golden["denoising_cost_step0"]):
        yield Comparison(file, run, "denoising_cost_step0", f"iteration {t}", denoising0[t], value, RELEASE_TRAIN_COST)
    for s, value in enumerate(golden["cost"]):
        where = f"the start of step {s + 1}" if s < 3 else "the end of step 3"
        yield Comparison(file, run, "cost", where, costs[s], value, RELEASE_TRAIN_COST)


@pytest.mark.parametrize("run", ["torch float64", "reference"])
def test_train_cost_against_release(run):
    for c in train_cost_comparisons(run):
        check(c)


def finite_difference_comparisons() -> Iterator[Comparison]:
    """The reference's central differences (gradcheck.numerical_grad, eps 1e-6) of its training cost at
    the element of largest golden gradient of a few parameters; scale: the largest gradient."""
    config, _, inputs = forward_case(FORWARD_CASES[0])
    golden = load(TRAIN_CASE, "f64clean_grads")
    largest = max(float(np.abs(g).max()) for g in golden.values())
    params = {k: np.array(v, dtype=np.float64) for k, v in inputs.params.items()}
    for name in FD_PARAMS:
        index = tuple(int(i) for i in np.unravel_index(np.abs(golden[name]).argmax(), golden[name].shape))

        def cost(p, name=name, index=index):
            moved = {**params, name: params[name].copy()}
            moved[name][index] = p["element"]
            return reference.training_cost(moved, config, inputs.x, inputs.m_init, inputs.corruption)

        fd = reference.numerical_grad(cost, {"element": np.array(params[name][index])})["element"]
        yield Comparison(f"{TRAIN_CASE}/f64clean_grads.npz", "reference finite differences",
                         f"d cost / d {name}{list(index)}", "the start (scale: the largest gradient)", fd,
                         golden[name][index], RELEASE_GRADIENT["finite differences"], largest)


def test_reference_finite_differences_against_release():
    for c in finite_difference_comparisons():
        check(c)

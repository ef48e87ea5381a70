"""The pieces, paired by name: tagger_reference.NAME and tagger_torch.model.NAME on the same arrays.

float64 on both sides, random (K, B, .) arrays and perturbed parameters; each output within the
float64 tolerance. The forward-pass tests cover the same code end to end; these localise a failure.
"""
import numpy as np
import pytest
import torch

import tagger_reference as reference
import tagger_torch.model as port

from .helpers import CASES, perturbed_params
from .tolerances import TABLE

TOL = TABLE["z"]["float64"]
BINARY = next(c.config for c in CASES if c.config.input_type == "binary")
CONTINUOUS = next(c.config for c in CASES if c.config.input_type == "continuous" and c.config.objects_per_sample == 2)


def to_torch(value):
    if isinstance(value, (np.ndarray, np.generic)):
        return torch.from_numpy(np.asarray(value))
    if isinstance(value, dict):
        return {k: to_torch(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_torch(v) for v in value)
    return value


def to_numpy(value):
    if torch.is_tensor(value):
        return value.numpy()
    if isinstance(value, tuple):
        return tuple(to_numpy(v) for v in value)
    return np.asarray(value)


def calls():
    rng = np.random.RandomState(3)
    K, B = 3, 6
    out = []
    for config in (BINARY, CONTINUOUS):
        D, H = config.input_size, config.encoder_proj
        params = {k: np.float64(v) for k, v in perturbed_params(config, seed=4).items()}
        v = None if config.input_type == "binary" else reference.pos(params["v"])
        x = (rng.rand(B, D) < 0.4) * 1.0 if config.input_type == "binary" else rng.rand(B, D)
        noise = (rng.rand(B, D) < 0.2) * 1.0 if config.input_type == "binary" else rng.randn(B, D)
        z, m = rng.rand(K, B, D), reference.initial_state(rng.randn(K, B, D), 0.0)[1]
        kind = "gauss" if config.input_type == "binary" else "gauss_stable_v"
        tag = f"{config.input_type}-{config.norm}"
        out += [
            (f"corrupt-{tag}", "corrupt", (x, noise, config)),
            (f"group_likelihood-{tag}", "group_likelihood", (x, z, config, v)),
            (f"delta_z-{tag}", "delta_z", (x, z, m, config)),
            (f"combinator-{kind}", "combinator", (rng.randn(B, 5), rng.randn(B, 5), [rng.randn(5) for _ in range(10)], kind)),
            (f"ladder-{tag}", "ladder", (np.maximum(rng.randn(K * B, H[0]), 0), params, config)),
            (f"tag_iteration-{tag}", "tag_iteration", (x, z, m, rng.randn(K, B, D), params, config)),
            (f"denoising_cost-{tag}", "denoising_cost", (x, z, m, config, v)),
        ]
    y = reference.initial_state(rng.randn(11, K, B), 0)[1].transpose(1, 2, 0)  # (K, B, 11) softmax rows
    P = reference.class_probabilities(y)
    two = rng.randint(0, 10, (B, 2))
    two[:2, 1] = two[:2, 0]
    out += [
        ("pos", "pos", (np.array([-50.0, -1.5, 0.0, 0.7, 30.0]),)),
        ("normalize-batch", "normalize", (rng.randn(7, 5) * 3 + 1, "batch")),
        ("normalize-layer", "normalize", (rng.randn(7, 5) * 3 + 1, "layer")),
        ("initial_state", "initial_state", (rng.randn(K, B, 4), 0.26)),
        ("class_probabilities", "class_probabilities", (y,)),
        ("classification_cost-1obj", "classification_cost", (P, rng.randint(0, 10, (B, 1)))),
        ("classification_cost-2obj", "classification_cost", (P, two)),
        ("classification_error-1obj", "classification_error", (P, rng.randint(0, 10, (B, 1)))),
        ("classification_error-2obj", "classification_error", (P, two)),
        ("classification_error-2obj-top", "classification_error", (P, np.argsort(-P, axis=1)[:, :2])),
    ]
    return out


@pytest.mark.parametrize("label, name, args", calls(), ids=lambda v: v if isinstance(v, str) else "")
def test_same_name_same_result(label, name, args):
    want = getattr(reference, name)(*args)
    with torch.no_grad():
        got = to_numpy(getattr(port, name)(*to_torch(args)))
    wants, gots = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for i, (w, g) in enumerate(zip(wants, gots)):
        w, g = np.asarray(w), np.asarray(g)
        assert w.shape == g.shape, f"{label}: output {i} shape {g.shape} != {w.shape}"
        diff = np.abs(g - w)
        assert np.all(diff <= TOL.atol + TOL.rtol * np.abs(w)), f"{label}: output {i}: max abs err {diff.max():.3g}"

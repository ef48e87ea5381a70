"""The twins, paired by name: tagger_reference.MODULE.NAME and tagger_torch.MODULE.NAME on the same
arrays, for every module the two implementations share (ops, ladder, tagger, costs, metrics, params).

float64 on both sides, random (K, B, .) arrays and perturbed parameters; each output within the
float64 tolerance (parameter tables: equal, bit for bit). The forward-pass tests cover the same code
end to end; these localise a failure. `test_every_shared_name_is_paired` keeps the pairing complete:
a function defined in both twins must be compared here, and one defined in only one twin must be
listed in ONE_SIDED with the reason.
"""
import importlib
import inspect

import numpy as np
import pytest
import torch

from tagger_torch.norms import NORMS

from .cases import CASES, perturbed_params
from .compare import assert_close
from .tolerances import TABLE

TOL = TABLE["z"]["float64"]
BINARY = next(c.config for c in CASES if c.config.input_type == "binary")
CONTINUOUS = next(c.config for c in CASES if c.config.input_type == "continuous" and c.config.objects_per_sample == 2)
DEEP = next(c.config for c in CASES if len(c.config.encoder_proj) > 3)
# the first case's config of each norm other than 'batch' and 'layer' (tagger_torch.norms)
OTHER_NORMS = [next(c.config for c in CASES if c.config.norm == norm)
               for norm in NORMS if norm not in ("batch", "layer")]
GAINS = next(c.config for c in CASES if c.config.norm == "layer-gain" and len(c.config.encoder_proj) > 3)

TWINS = ("ops", "ladder", "tagger", "costs", "metrics", "params", "optim", "model")
# (module, name) -> where the function's contract is checked, or why it has no twin
ONE_SIDED = {
    ("ops", "sigmoid"): "reference only: torch.sigmoid",
    ("ops", "relu"): "reference only: torch.relu",
    ("ops", "softmax"): "reference only: torch.softmax",
    ("ops", "project"): "torch only: a product cast back to the weights' dtype (bf16 autocast)",
    ("ladder", "ladder_products"): "torch only: the mapping's products, for the FLOP count (tests/test_bench.py)",
    ("tagger", "draw_corruption"): "torch only: the reference takes its noise draws as arguments",
    ("tagger", "layer_products"): "torch only: FLOP count (tests/test_bench.py)",
    ("tagger", "flop_per_step"): "torch only: FLOP count (tests/test_bench.py)",
    ("tagger", "step_products"): "torch only: a training step's products, for the FLOP count and bench's floor",
    ("metrics", "true_labels_from_masks"): "torch only: a step of the vectorised AMI (tests/test_metrics.py)",
    ("metrics", "contingency_tables"): "torch only: a step of the vectorised AMI (tests/test_metrics.py)",
    ("metrics", "ami_from_contingency"): "torch only: a step of the vectorised AMI (tests/test_metrics.py)",
    ("metrics", "ari_from_contingency"): "torch only: a step of the vectorised AMI (tests/test_metrics.py)",
    ("metrics", "grouping_tables"): "torch only: a step of the vectorised AMI (tests/test_metrics.py)",
    ("optim", "adam_step"): "reference; its torch twin is the optimizer BlocksAdam (test_parity_optim.py)",
    ("optim", "adam_update_"): "torch only: BlocksAdam's in-place rule (test_parity_optim.py)",
    ("optim", "fused_adam_update_"): "torch only: the same rule as one compiled pass, BlocksAdam(fused=True) "
                                     "(test_parity_optim.py)",
    ("model", "forward"): "reference; its torch twin is Tagger.forward(record=True) (test_parity_forward.py)",
    ("model", "training_cost"): "reference; its torch twin is TaggerOutput.cost (test_parity_grad.py)",
}


def twin(side: str, module: str):
    return importlib.import_module(f"{'tagger_reference' if side == 'reference' else 'tagger_torch'}.{module}")


def functions(module) -> set:
    """The public functions a module defines (not those it imports)."""
    return {name for name, value in vars(module).items() if inspect.isfunction(value)
            and value.__module__ == module.__name__ and not name.startswith("_")}


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
    return value if isinstance(value, (str, dict)) else np.asarray(value)


def calls():
    """(label, module, function name, arguments) of every comparison."""
    rng = np.random.RandomState(3)
    K, B = 3, 6
    out = []
    for config in (BINARY, CONTINUOUS):
        D, H = config.input_size, config.encoder_proj
        params = {k: np.float64(v) for k, v in perturbed_params(config, seed=4).items()}
        v = None if config.input_type == "binary" else twin("reference", "ops").pos(params["v"])
        x = (rng.rand(B, D) < 0.4) * 1.0 if config.input_type == "binary" else rng.rand(B, D)
        noise = (rng.rand(B, D) < 0.2) * 1.0 if config.input_type == "binary" else rng.randn(B, D)
        z, m = rng.rand(K, B, D), twin("reference", "tagger").initial_state(rng.randn(K, B, D), 0.0)[1]
        kind = "gauss" if config.input_type == "binary" else "gauss_stable_v"
        tag = f"{config.input_type}-{config.norm}"
        out += [
            (f"corrupt-{tag}", "tagger", "corrupt", (x, noise, config)),
            (f"group_likelihood-{tag}", "tagger", "group_likelihood", (x, z, config, v)),
            (f"delta_z-{tag}", "tagger", "delta_z", (x, z, m, config)),
            (f"combinator_kind-{tag}", "ladder", "combinator_kind", (config,)),
            (f"combinator-{kind}", "ladder", "combinator",
             (rng.randn(B, 5), rng.randn(B, 5), [rng.randn(5) for _ in range(10)], kind)),
            (f"ladder-{tag}", "ladder", "ladder", (np.maximum(rng.randn(K * B, H[0]), 0), params, config)),
            (f"tag_iteration-{tag}", "tagger", "tag_iteration", (x, z, m, rng.randn(K, B, D), params, config)),
            (f"denoising_cost-{tag}", "costs", "denoising_cost", (x, z, m, config, v)),
        ]
    y = twin("reference", "tagger").initial_state(rng.randn(11, K, B), 0)[1].transpose(1, 2, 0)  # (K, B, 11)
    P = twin("reference", "costs").class_probabilities(y)
    two = rng.randint(0, 10, (B, 2))
    two[:2, 1] = two[:2, 0]
    masks = np.eye(3)[rng.randint(0, 3, (B, 20))].transpose(0, 2, 1)  # (B, G, D) one-hot true masks
    masks[:, :, :4] = 1 / 3  # shared pixels, which the scores ignore
    pred = twin("reference", "tagger").initial_state(rng.randn(K, B, 20) * 3, 0)[1]  # (K, B, D)
    pred[:, :2] = np.eye(K)[masks.argmax(1)[:2]].transpose(2, 0, 1)  # two examples grouped perfectly
    out += [
        ("pos", "ops", "pos", (np.array([-50.0, -1.5, 0.0, 0.7, 30.0]),)),
        ("soft_clip", "ops", "soft_clip", (rng.rand(4, 5),)),
        ("binary_cross_entropy", "ops", "binary_cross_entropy",
         (rng.rand(4, 5) * 0.98 + 0.01, (rng.rand(4, 5) < 0.5) * 1.0)),
        ("normalize-batch", "ops", "normalize", (rng.randn(7, 5) * 3 + 1, "batch")),
        ("normalize-layer", "ops", "normalize", (rng.randn(7, 5) * 3 + 1, "layer")),
        ("normalize-layer-groups", "ops", "normalize", (rng.randn(K * B, 5) * 3 + 1, "layer-groups", K)),
        ("initial_state", "tagger", "initial_state", (rng.randn(K, B, 4), 0.26)),
        ("class_probabilities", "costs", "class_probabilities", (y,)),
        ("classification_cost-1obj", "costs", "classification_cost", (P, rng.randint(0, 10, (B, 1)))),
        ("classification_cost-2obj", "costs", "classification_cost", (P, two)),
        ("classification_error-1obj", "costs", "classification_error", (P, rng.randint(0, 10, (B, 1)))),
        ("classification_error-2obj", "costs", "classification_error", (P, two)),
        ("classification_error-2obj-top", "costs", "classification_error", (P, np.argsort(-P, axis=1)[:, :2])),
        ("ami_score", "metrics", "ami_score", (masks, pred)),
        ("ari_score", "metrics", "ari_score", (masks, pred)),
    ]
    for config in OTHER_NORMS:
        D, H, tag = config.input_size, config.encoder_proj, f"{config.input_type}-{config.norm}"
        params = {k: np.float64(v) for k, v in perturbed_params(config, seed=5).items()}
        x = (rng.rand(B, D) < 0.4) * 1.0 if config.input_type == "binary" else rng.rand(B, D)
        z, m = rng.rand(K, B, D), twin("reference", "tagger").initial_state(rng.randn(K, B, D), 0.0)[1]
        out += [(f"ladder-{tag}", "ladder", "ladder", (np.maximum(rng.randn(K * B, H[0]), 0), params, config)),
                (f"tag_iteration-{tag}", "tagger", "tag_iteration", (x, z, m, rng.randn(K, B, D), params, config))]
    for config in (BINARY, CONTINUOUS, DEEP, GAINS):
        tag = f"{config.input_type}-L{len(config.encoder_proj) - 1}-{config.norm}"
        out += [(f"{name}-{tag}", module, name, (config,) + ((11,) if name.startswith("init") else ()))
                for module, name in (("ladder", "ladder_shapes"), ("ladder", "init_ladder"),
                                     ("params", "tagger_shapes"), ("params", "init_tagger"),
                                     ("params", "param_shapes"), ("params", "init_params"))]
    return out


CALLS = calls()


@pytest.mark.parametrize("label, module, name, args", CALLS, ids=[c[0] for c in CALLS])
def test_same_name_same_result(label, module, name, args):
    want = getattr(twin("reference", module), name)(*args)
    with torch.no_grad():
        got = to_numpy(getattr(twin("torch", module), name)(*to_torch(args)))
    if isinstance(want, (str, dict)):  # names, shapes, the release's initial arrays: equal
        assert type(got) is type(want) or isinstance(got, dict), f"{label}: {type(got)} != {type(want)}"
        if isinstance(want, dict):
            assert list(got) == list(want), f"{label}: names or their order differ"
            for key in want:
                assert np.array_equal(np.asarray(got[key]), np.asarray(want[key])), f"{label}: {key} differs"
                assert np.asarray(got[key]).dtype == np.asarray(want[key]).dtype, f"{label}: {key} dtype differs"
        else:
            assert got == want, f"{label}: {got!r} != {want!r}"
        return
    wants, gots = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for i, (w, g) in enumerate(zip(wants, gots)):
        assert_close(g, w, TOL, quantity=f"{module}.{name}, output {i}", context=f"{label} [float64]")


def test_every_shared_name_is_paired():
    """Both twins have the same module names; a function in both is compared above under that name,
    and a function in one twin only is listed in ONE_SIDED with the reason."""
    compared = {(module, name) for _, module, name, _ in CALLS}
    for module in TWINS:
        ref, port = functions(twin("reference", module)), functions(twin("torch", module))
        for name in ref & port:
            assert (module, name) in compared, f"{module}.{name} is in both twins but not compared"
        for name in ref ^ port:
            assert (module, name) in ONE_SIDED, f"{module}.{name} is in one twin only; pair it or say why"
    defined = {(module, name) for module in TWINS
               for name in functions(twin("reference", module)) | functions(twin("torch", module))}
    stale = [key for key in ONE_SIDED if key not in defined]
    assert not stale, f"ONE_SIDED names no longer defined: {stale}"


def test_shared_records_have_the_same_fields():
    """IterationOutput is the same record in both; the torch Mapping adds its FLOP count to the
    reference's (shapes, init, apply)."""
    ref, port = twin("reference", "tagger"), twin("torch", "tagger")
    assert ref.IterationOutput._fields == port.IterationOutput._fields
    assert port.Mapping._fields[:len(ref.Mapping._fields)] == ref.Mapping._fields

"""The model registry: a model other than Tagger, one class here and one registry line, trains, stops,
resumes exactly, is scored and benched through the same Trainer, run directory, evaluation and bench;
the verbs that need what it cannot do (groups, iterations, population statistics) say so in one line."""
import json
import os
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from tagger_torch.config import RunConfig, from_dict, load_config
from tagger_torch.errors import TaggerError
from tagger_torch.evaluate import evaluate_model
from tagger_torch.files import save_npz
from tagger_torch.inputs import check_params
from tagger_torch.bench import run_bench
from tagger_torch.models import MODELS, Batch, Product, Split, build_model, step_flop
from tagger_torch.training import run_training
from tagger_torch.training.rundir import load_model
from tiny import assert_one_line_error, invoke

CPU = torch.device("cpu")


@dataclass(frozen=True)
class ToyConfig(RunConfig):
    model: str = "toy"  # this model's registry name
    hidden: int = 8  # units of the bottleneck


class Toy(nn.Module):
    """A linear autoencoder of the unlabelled batch: the smallest model with the interface."""

    monitor = "cost"

    def __init__(self, config: ToyConfig, seed=None, params=None, device=None):
        super().__init__()
        self.config = config
        D, H = config.input_size, config.hidden
        self.shapes = {"enc": (D, H), "dec": (H, D)}
        rng = np.random.RandomState(config.seed if seed is None else seed)
        for name, shape in self.shapes.items():
            value = np.float32(rng.randn(*shape) / np.sqrt(shape[0]))
            self.register_parameter(name, nn.Parameter(torch.from_numpy(value)))
        if params is not None:
            self.load_params(params)

    def forward(self, x):
        return ((x @ self.enc @ self.dec - x) ** 2).mean()

    def batch_cost(self, batch: Batch, generator, forward=None):
        cost = (self if forward is None else forward)(batch.x)
        return cost, {"cost": cost.detach()}

    @torch.no_grad()
    def evaluate(self, split: Split, *, batch_size, generator, progress=False, **options):  # options: K, T
        costs = [len(x) * float(self(x)) for x in torch.split(split.x, batch_size)]
        return {"cost": [sum(costs) / len(split.x)]}

    def evaluation_facts(self, **options):
        return {"hidden": self.config.hidden}

    def load_params(self, params, subset=False):
        fitted = check_params(params, self.shapes, subset)
        with torch.no_grad():
            for name, value in fitted.items():
                self._parameters[name].copy_(torch.as_tensor(np.asarray(value)))
        return list(fitted)

    def save_npz(self, path):
        save_npz(path, {name: p.detach().numpy() for name, p in self.named_parameters()})

    def step_products(self, batch_size):
        D, H = self.config.input_size, self.config.hidden
        return [Product(batch_size, D, H, input_grad=False), Product(batch_size, H, D)]  # x is the data

    def flop_per_step(self, batch_size):
        return step_flop(self.step_products(batch_size))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(MODELS, "toy", (f"{__name__}:ToyConfig", f"{__name__}:Toy"))
    return from_dict({"model": "toy", "hidden": 6, "batch_size": 50, "valid_batch_size": 50, "num_epochs": 2,
                      "lr": 0.01, "seed": 4})


def params_of(run):
    with np.load(os.path.join(run, "params.npz")) as f:
        return {k: f[k] for k in f.files}


def test_a_registered_model_trains_resumes_and_scores(tmp_path, small_shapes_h5, toy):
    assert isinstance(toy, ToyConfig) and isinstance(build_model(toy), Toy)
    whole, parts = str(tmp_path / "whole"), str(tmp_path / "parts")
    result = run_training(toy, small_shapes_h5, whole, CPU, echo=lambda s: None)
    assert result["epochs_done"] == 2
    with open(os.path.join(whole, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [set(r) >= {"train_cost", "valid_cost"} for r in rows] == [True, True]
    assert rows[1]["train_cost"] < rows[0]["train_cost"]
    assert load_config(os.path.join(whole, "config.json")) == toy  # config.json names the model
    run_training(toy, small_shapes_h5, parts, CPU, max_steps=3, echo=lambda s: None)
    run_training(toy, small_shapes_h5, parts, CPU, resume=True, echo=lambda s: None)
    a, b = params_of(whole), params_of(parts)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    config, model = load_model(whole)
    scores = evaluate_model(model, small_shapes_h5, "test")
    assert isinstance(model, Toy) and scores["hidden"] == 6 and scores["n_examples"] == 100
    assert np.isfinite(scores["cost"][0])


def test_config_files_pick_their_model(toy):
    assert from_dict({"encoder_proj": [8, 4]}).model == "tagger"  # no `model` field: Tagger's
    with pytest.raises(TaggerError, match="unknown config field.*encoder_proj"):
        from_dict({"model": "toy", "encoder_proj": [8, 4]})  # another model's fields are not this one's
    with pytest.raises(TaggerError, match="unknown model 'nope' .known: tagger, fc-mlp"):
        from_dict({"model": "nope"})


@pytest.mark.parametrize("verb, args, message", [
    ("visualize", ["--out", "f.png"], "visualize needs a model that splits its inputs into groups; the model 'toy'"),
    ("segment", ["--out", "s.npz", "--input", "x.npy"], "segment needs a model that splits its inputs into groups"),
    ("calibrate", [], "calibrate needs a model that can normalise with population statistics"),
    ("evaluate", ["--norm-stats", "population"], "--norm-stats population needs a model that can normalise"),
    ("trace", [], "trace needs a model that refines its groups over iterations; the model 'toy' does not"),
])
def test_a_verb_the_model_cannot_serve_says_so(tmp_path, small_shapes_h5, toy, verb, args, message):
    run = str(tmp_path / "run")
    run_training(toy.replace(num_epochs=1), small_shapes_h5, run, CPU, echo=lambda s: None)
    if verb == "trace":
        common = ["--config", os.path.join(run, "config.json"), "--params", os.path.join(run, "params.npz"),
                  "--input", "x.npy", "--noise", "n.npz", "--out", "t.npz"]
    else:
        common = ["--run", run] + (["--hdf5", small_shapes_h5] if verb != "segment" else [])
    assert_one_line_error(invoke(verb, *common, *args, "--device", "cpu"), message)


def test_bench_times_a_registered_model(toy):
    r = run_bench(toy, steps=1, device=CPU, precision="fp32", compile=False, warmup=1)
    # 2mkn for each product's forward and weight gradient, and the second one's input gradient
    assert r["model"] == "toy" and r["model_gflop_per_step"] == pytest.approx(5 * 2 * 50 * 400 * 6 / 1e9)
    assert r["floor_ms"] > 0 and r["shape"] == {"model": "toy", "in_dim": [400], "batch_size": 50, "hidden": 6}

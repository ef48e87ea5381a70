"""The Table-2 baselines (tagger_torch/baselines/): they train through the shared loop and lower their
cost, score with Tagger's own error function (SPEC 6's two-digit rule), read exactly Tagger's
stage-2 labelled examples, resume exactly, and the command line refuses what they cannot do."""
import json
import os

import h5py
import numpy as np
import pytest
import torch

from tagger_torch import costs
from tagger_torch.baselines import common
from tagger_torch.baselines.common import softmax_cross_entropy
from tagger_torch.baselines.convnet import ConvNet, conv_sizes
from tagger_torch.baselines.ladder_net import LadderNet
from tagger_torch.baselines.mlp import MLP
from tagger_torch.config import PRESETS, from_dict, get_preset
from tagger_torch.data import dataset_info
from tagger_torch.data.freq20 import generate_freq20
from tagger_torch.data.h5layout import write_fuel_file
from tagger_torch.models import Split, build_model
from tagger_torch.training import run_training
from tagger_torch.training.streams import Streams, labelled_indices, load_train_data
from tiny import LABELLED, assert_one_line_error, invoke, write_labelled_h5

CPU = torch.device("cpu")
# tiny versions of the three baselines on labelled_h5 (4x4 images, two digits, 200 train examples)
SMALL = {"in_dim": [1, 4, 4], "objects_per_sample": 2, "batch_size": 20, "valid_batch_size": 20, "num_epochs": 3,
         "seed": 1, "lr": 0.01}
TINY_MODELS = {
    "fc-mlp": {**SMALL, "model": "fc-mlp", "hidden": [16, 16]},
    "fc-ladder": {**SMALL, "model": "fc-ladder", "hidden": [12, 8], "denoising_weights": [1, 1, 0.1, 0.1]},
    # All-CNN-C needs images of at least 9x9 for its strides and valid 3x3: the 28x28 Freq20 file below
    "convnet": {**SMALL, "model": "convnet", "in_dim": [1, 28, 28], "channels": [4, 6]},
}


@pytest.fixture(scope="module")
def labelled_h5(tmp_path_factory):
    return write_labelled_h5(tmp_path_factory.mktemp("labelled") / "labelled.h5")


@pytest.fixture(scope="module")
def freq20_h5(tmp_path_factory, synthetic_mnist):
    """A small Freq20-2MNIST file from the synthetic digits: train 60, valid 20, test 20."""
    path = tmp_path_factory.mktemp("freq20") / "freq20-2mnist-small.h5"
    splits = generate_freq20(synthetic_mnist, 2, n_train=60, n_valid=20, n_test=20, progress=False)
    with h5py.File(path, "w") as f:
        write_fuel_file(f, splits)
    return str(path)


def metrics(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_a_few_epochs_lower_the_cost(tmp_path, labelled_h5, freq20_h5, model):
    config = from_dict(TINY_MODELS[model])
    run = str(tmp_path / "run")
    result = run_training(config, freq20_h5 if model == "convnet" else labelled_h5, run, CPU, echo=lambda s: None,
                          compile=False)
    rows = metrics(run)
    assert result["epochs_done"] == 3 and rows[-1]["train_cost"] < rows[0]["train_cost"]
    assert all(0 <= r["valid_class_error"][0] <= 100 for r in rows)
    if model == "fc-ladder":  # semi-supervised: the unlabelled train split makes the epoch
        assert rows[0]["steps"] == 200 // 20 and len(rows[0]["train_denoising_cost"]) == 4
    else:  # supervised: the labelled examples (all of them here) make the epoch
        assert rows[0]["steps"] == (60 if model == "convnet" else 200) // 20


def test_supervised_epoch_is_taggers_stage_two_labelled_set(labelled_h5):
    """With 20 labels the MLP's epoch is exactly the 20 examples Tagger's stage 2 labels (same seed)."""
    mlp = from_dict({**TINY_MODELS["fc-mlp"], "labeled_samples": 20, "batch_size": 10})
    tagger = from_dict({**LABELLED, "labeled_samples": 20, "batch_size": 10})
    info = dataset_info(labelled_h5)
    data = load_train_data(labelled_h5, info, mlp, CPU)
    tagger_data = load_train_data(labelled_h5, info, tagger, CPU)
    assert torch.equal(data.labelled, tagger_data.labelled)
    expected = labelled_indices(data.train.labels.numpy(), 1, 20, 10)
    streams = Streams(data, mlp.seed, mlp.batch_size, unlabelled=False)
    assert streams.n_train == 20 and streams.steps_per_epoch == 2
    for epoch in range(2):
        streams.start_epoch(epoch, streams.epoch_order(epoch))
        batches = [streams.batch(step) for step in range(2)]
        assert all(b.x is None for b in batches)
        seen = torch.cat([b.x_labelled for b in batches])
        assert torch.equal(seen[seen[:, 0].argsort()], data.train.x[expected][data.train.x[expected][:, 0].argsort()])
        labels = torch.cat([b.labels for b in batches])
        assert sorted(labels[:, 0].tolist()) == sorted(data.train.labels[expected][:, 0].tolist())


def test_two_digit_error_is_taggers_function():
    """The baselines' error is costs.classification_error itself, and their cost its cross-entropy."""
    assert common.classification_error is costs.classification_error
    config = from_dict(TINY_MODELS["fc-mlp"])
    model = build_model(config)
    labels = torch.tensor([[3, 3], [1, 2], [4, 5], [0, 9]])
    logits = torch.full((4, 10), -2.0)
    logits[0, 3], logits[0, 8] = 5.0, 4.0  # same digit twice: right when top-1 is it
    logits[1, 1], logits[1, 7] = 5.0, 4.0  # top two {1, 7} against {1, 2}: half wrong
    logits[2, 6], logits[2, 7] = 5.0, 4.0  # top two {6, 7} against {4, 5}: wrong
    logits[3, 9], logits[3, 0] = 5.0, 4.0  # top two {9, 0} against {0, 9}: right
    model.predict = lambda x: logits[: x.shape[0]]
    scores = model.evaluate(Split(torch.zeros(4, 16), labels), batch_size=4, generator=torch.Generator())
    assert scores["class_error"] == [pytest.approx(37.5)]
    P = torch.softmax(logits, dim=1)
    assert float(costs.classification_error(P, labels)) == pytest.approx(37.5)
    assert float(softmax_cross_entropy(logits, labels)) == pytest.approx(float(costs.classification_cost(P, labels)))
    assert scores["class_cost"] == [pytest.approx(float(costs.classification_cost(P, labels)))]


@pytest.mark.parametrize("model", ["fc-mlp", "fc-ladder"])
def test_stop_and_resume_equal_an_uninterrupted_run(tmp_path, labelled_h5, model):
    config = from_dict({**TINY_MODELS[model], "num_epochs": 2, "labeled_samples": 40})
    whole, parts = str(tmp_path / "whole"), str(tmp_path / "parts")
    run_training(config, labelled_h5, whole, CPU, echo=lambda s: None, compile=False)
    run_training(config, labelled_h5, parts, CPU, max_steps=3, echo=lambda s: None, compile=False)
    run_training(config, labelled_h5, parts, CPU, resume=True, echo=lambda s: None)
    with np.load(os.path.join(whole, "params.npz")) as a, np.load(os.path.join(parts, "params.npz")) as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_presets_carry_the_papers_sizes():
    sizes = {name: get_preset(name) for name, p in PRESETS.items() if isinstance(p, dict) and name.startswith("freq20")}
    assert len(sizes) == 12
    assert sizes["freq20-1mnist-fc-mlp"].hidden == (2000, 2000, 2000)
    assert sizes["freq20-2mnist-fc-mlp-1k"].hidden == (1000, 1000)
    assert sizes["freq20-2mnist-fc-ladder"].encoder_proj == (784, 3000, 2000, 1000, 500, 250, 10)
    assert conv_sizes(sizes["freq20-1mnist-convnet"])[1:] == [
        (96, 28, 28), (96, 28, 28), (96, 14, 14), (192, 14, 14), (192, 14, 14), (192, 7, 7), (192, 5, 5),
        (192, 5, 5), (10, 5, 5)]
    for name, config in sizes.items():
        assert config.labeled_samples == (1000 if name.endswith("-1k") else None) and config.seed == 1
        assert config.objects_per_sample == int(name[len("freq20-")])


def test_ladder_presets_carry_rasmus_et_al_settings_by_label_count():
    """CuriousAI/ladder's README: 1000 labels 2000,20,0.1,... with noise 0.2; all labels 1000,1,0.01,...
    with noise 0.3; 150 epochs at lr 0.002, decaying linearly to 0 from epoch 100.5 (lrate_decay 0.67)."""
    few, every = get_preset("freq20-2mnist-fc-ladder-1k"), get_preset("freq20-1mnist-fc-ladder")
    assert few.denoising_weights == (2000, 20, 0.1, 0.1, 0.1, 0.1, 0.1) and few.noise_std == 0.2
    assert every.denoising_weights == (1000, 1, 0.01, 0.01, 0.01, 0.01, 0.01) and every.noise_std == 0.3
    mnist = get_preset("mnist-fc-ladder-1k")
    assert mnist.encoder_proj == (784, 1000, 500, 250, 250, 250, 10) and mnist.denoising_weights == few.denoising_weights
    for config in (few, every, mnist):
        assert (config.num_epochs, config.lr, config.lrate_decay) == (150, 0.002, 0.67)
        lrs = [config.lr_at(epoch) for epoch in range(150)]
        assert lrs[:101] == [0.002] * 101  # epochs 1..101 (0-based 0..100): the constant rate
        assert lrs[101] == pytest.approx(0.002 * 49 / 49.5) and lrs[149] == pytest.approx(0.002 / 49.5)
        assert all(a > b for a, b in zip(lrs[100:], lrs[101:]))
    assert get_preset("freq20-2mnist-convnet").lr_at(99) == get_preset("freq20-2mnist-convnet").lr  # constant


def test_models_build_and_reload_by_name(tmp_path, freq20_h5):
    for model, cls in (("fc-mlp", MLP), ("fc-ladder", LadderNet), ("convnet", ConvNet)):
        config = from_dict({**TINY_MODELS[model], "in_dim": [1, 28, 28]})
        a = build_model(config)
        a.save_npz(str(tmp_path / "p.npz"))
        with np.load(tmp_path / "p.npz") as f:
            b = build_model(config, params={k: f[k] for k in f.files})
        assert isinstance(b, cls) and list(a.shapes) == list(b.state_dict())
        x = torch.rand(5, 784)
        assert torch.equal(a(x), b(x)) and a(x).shape == (5, 10)


def write_json(path, d):
    path.write_text(json.dumps(d))
    return str(path)


def test_cli_trains_and_evaluates_a_baseline(tmp_path, labelled_h5):
    config = write_json(tmp_path / "mlp.json", {**TINY_MODELS["fc-mlp"], "num_epochs": 1})
    run = tmp_path / "run"
    result = invoke("train", "--model", "fc-mlp", "--config", config, "--hdf5", labelled_h5, "--out", run,
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "valid class error" in result.output
    result = invoke("evaluate", "--run", run, "--hdf5", labelled_h5, "--device", "cpu", "--out", tmp_path / "t.json")
    assert result.exit_code == 0, result.output
    assert "model fc-mlp" in result.output and "class error %" in result.output
    scores = json.loads((tmp_path / "t.json").read_text())
    assert scores["model"] == "fc-mlp" and scores["n_examples"] == 40 and 0 <= scores["class_error"][0] <= 100


@pytest.mark.parametrize("case, message", [
    ("unknown_model", "unknown model 'nope' (known: tagger, fc-mlp, fc-ladder, convnet)"),
    ("no_labels", "the model 'fc-mlp' learns from labels but"),
    ("no_labels_config", "the model 'convnet' learns from labels but"),
    ("no_labels_preset", "the model 'fc-mlp' learns from labels but"),
    ("mismatch", "--model fc-mlp does not match the preset 'freq20-2mnist-pretrain'"),
    ("groups", "--groups needs a model that splits its inputs into groups; the model 'fc-mlp' does not"),
])
def test_bad_requests_give_one_line_and_exit_2(tmp_path, small_shapes_h5, labelled_h5, case, message):
    out = ["--out", tmp_path / "run", "--device", "cpu"]
    if case == "groups":
        config = write_json(tmp_path / "mlp.json", {**TINY_MODELS["fc-mlp"], "num_epochs": 1})
        assert invoke("train", "--config", config, "--hdf5", labelled_h5, *out).exit_code == 0
        result = invoke("evaluate", "--run", tmp_path / "run", "--hdf5", labelled_h5, "--groups", 3)
    else:
        args = {
            "unknown_model": ["--model", "nope", "--hdf5", labelled_h5],
            "no_labels": ["--model", "fc-mlp", "--hdf5", small_shapes_h5],
            "no_labels_config": ["--hdf5", small_shapes_h5, "--config", write_json(
                tmp_path / "c.json", {**TINY_MODELS["convnet"], "in_dim": [1, 20, 20]})],
            "no_labels_preset": ["--preset", "freq20-1mnist-fc-mlp", "--hdf5", small_shapes_h5],
            "mismatch": ["--model", "fc-mlp", "--preset", "freq20-2mnist-pretrain", "--hdf5", labelled_h5],
        }[case]
        result = invoke("train", *args, *out)
        assert not (tmp_path / "run").exists()  # refused before the run directory is made
    assert_one_line_error(result, message)

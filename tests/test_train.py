"""`tagger-torch train`: the cost falls, the run directory, exact resume, NaN stop, one-line errors."""
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from tagger_torch.config import from_dict, load_config, preset_for_data, resolve_config
from tagger_torch.data import dataset_info
from tagger_torch.errors import TaggerError
from tagger_torch.inputs import check_params, read_params
from tagger_torch.model import Tagger
from tagger_torch.models import Split
from tagger_torch.training import Trainer, run_training
from tagger_torch.training import step as step_module
from tagger_torch.training import trainer as trainer_module
from tagger_torch.training.streams import labelled_indices, load_examples
from tiny import TINY, assert_one_line_error, invoke, write_labelled_h5

CPU = torch.device("cpu")


def write_json(path, d):
    with open(path, "w") as f:
        json.dump(d, f)
    return str(path)


def params_of(run_dir):
    return read_params(os.path.join(run_dir, "params.npz"))


def metrics_of(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [{k: v for k, v in r.items() if not k.endswith(("time_s", "per_s"))} for r in rows]


def assert_same_params(a, b):
    assert set(a) == set(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def tiny_config():
    return from_dict(TINY)


def test_training_lowers_the_cost_and_writes_the_run(tmp_path, small_shapes_h5):
    cfg = write_json(tmp_path / "tiny.json", {**TINY, "num_epochs": 3})
    run = tmp_path / "run"
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", cfg, "--out", run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = metrics_of(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_cost"] < rows[0]["train_cost"]
    assert np.mean(rows[-1]["valid_denoising_cost"]) < np.mean(rows[0]["valid_denoising_cost"])
    assert all(len(r["train_denoising_cost"]) == len(r["valid_denoising_cost"]) == 2 for r in rows)
    config = load_config(str(run / "config.json"))
    assert config == from_dict({**TINY, "num_epochs": 3})
    # params.npz is the release format: it loads into the port and into the NumPy reference
    model = Tagger(config, params=params_of(run))
    assert set(model.state_dict()) == set(params_of(run))
    reference = pytest.importorskip("tagger_reference")
    check_params(params_of(run), reference.param_shapes(config))
    with open(run / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # a second train into the same directory is refused
    again = invoke("train", "--hdf5", small_shapes_h5, "--config", cfg, "--out", run, "--device", "cpu")
    assert_one_line_error(again, "--resume")


def test_stop_and_resume_equal_an_uninterrupted_run(tmp_path, small_shapes_h5, tiny_config):
    whole = run_training(tiny_config, small_shapes_h5, str(tmp_path / "whole"), CPU, echo=lambda s: None)
    assert whole["epochs_done"] == 2 and not whole["stopped"]
    parts = str(tmp_path / "parts")
    first = run_training(tiny_config, small_shapes_h5, parts, CPU, max_steps=4, echo=lambda s: None)
    assert first["stopped"] and first["epochs_done"] == 0  # stopped mid-epoch 1 (6 steps)
    second = run_training(tiny_config, small_shapes_h5, parts, CPU, resume=True, max_steps=5, echo=lambda s: None)
    assert second["stopped"] and second["epochs_done"] == 1  # crossed the epoch's end, stopped in epoch 2
    run_training(tiny_config, small_shapes_h5, parts, CPU, resume=True, echo=lambda s: None)
    assert_same_params(params_of(tmp_path / "whole"), params_of(parts))
    assert metrics_of(tmp_path / "whole") == metrics_of(parts)


def test_a_killed_run_resumes_exactly_from_its_last_checkpoint_within_the_epoch(tmp_path, small_shapes_h5,
                                                                               tiny_config, monkeypatch):
    """With checkpoint_every_s 0 and LOG_EVERY 1 a checkpoint is written after every step; a process
    that dies in step 4 without a chance to save (kill -9) resumes from step 3 to the uninterrupted
    run's parameters and metrics."""
    run_training(tiny_config, small_shapes_h5, str(tmp_path / "whole"), CPU, echo=lambda s: None)
    monkeypatch.setattr(trainer_module, "LOG_EVERY", 1)
    real_step, calls = step_module.train_step, []

    def dies_in_step_4(*args):
        calls.append(1)
        if len(calls) == 4:
            raise SystemExit(137)
        return real_step(*args)

    run = str(tmp_path / "run")
    monkeypatch.setattr(step_module, "train_step", dies_in_step_4)
    with pytest.raises(SystemExit):
        run_training(tiny_config, small_shapes_h5, run, CPU, echo=lambda s: None, checkpoint_every_s=0.0)
    state = torch.load(os.path.join(run, "checkpoint.pt"), weights_only=True)
    assert (state["epoch"], state["step"]) == (0, 3)
    monkeypatch.setattr(step_module, "train_step", real_step)
    run_training(tiny_config, small_shapes_h5, run, CPU, resume=True, echo=lambda s: None)
    assert_same_params(params_of(tmp_path / "whole"), params_of(run))
    assert metrics_of(tmp_path / "whole") == metrics_of(run)


def test_no_checkpoint_within_an_epoch_when_checkpoint_every_s_is_none(tmp_path, small_shapes_h5, tiny_config,
                                                                       monkeypatch):
    monkeypatch.setattr(trainer_module, "LOG_EVERY", 1)
    saved = []
    monkeypatch.setattr(trainer_module, "save_checkpoint", lambda path, state: saved.append(state["step"]))
    run_training(tiny_config.replace(num_epochs=1), small_shapes_h5, str(tmp_path / "run"), CPU,
                 echo=lambda s: None, checkpoint_every_s=None)
    assert saved == [0]  # the end of epoch 1 only


def test_without_a_bar_each_checkpoint_within_an_epoch_prints_where_the_epoch_stands(tmp_path, small_shapes_h5,
                                                                                     tiny_config, monkeypatch):
    """A run whose stderr is no terminal (a log file) has no progress bar; it prints one line at each
    checkpoint within the epoch instead."""
    monkeypatch.setattr(trainer_module, "LOG_EVERY", 2)
    config = tiny_config.replace(num_epochs=1)
    for progress in (False, True):
        lines = []
        run_training(config, small_shapes_h5, str(tmp_path / f"run-{progress}"), CPU, echo=lines.append,
                     checkpoint_every_s=0.0, progress=progress)
        at_checkpoints = [line for line in lines if "(checkpoint saved)" in line]
        if progress:
            assert at_checkpoints == []
        else:
            steps = [int(re.match(r"epoch 1/1: step (\d+) of (\d+) \(checkpoint saved\), [0-9.]+ s a step, about "
                                  r"\d+ min to the epoch's end$", line).group(1)) for line in at_checkpoints]
            assert steps and steps == list(range(2, steps[-1] + 1, 2)), lines


def test_lr_schedule_runs_through_a_resume(tmp_path, small_shapes_h5, tiny_config):
    """lrate_decay: constant for the first 1.02 epochs of 3, then the third epoch at (3 - 2) / (3 - 1.02)
    of lr; a run stopped mid-epoch 3 and resumed continues the schedule exactly."""
    config = tiny_config.replace(num_epochs=3, lrate_decay=0.34)
    run_training(config, small_shapes_h5, str(tmp_path / "whole"), CPU, echo=lambda s: None)
    lrs = [row["lr"] for row in metrics_of(tmp_path / "whole")]
    assert lrs[:2] == [config.lr] * 2 and lrs[2] == pytest.approx(config.lr / 1.98)
    parts = str(tmp_path / "parts")
    run_training(config, small_shapes_h5, parts, CPU, max_steps=15, echo=lambda s: None)  # 3 steps into epoch 3
    run_training(config, small_shapes_h5, parts, CPU, resume=True, echo=lambda s: None)
    assert_same_params(params_of(tmp_path / "whole"), params_of(parts))
    constant = str(tmp_path / "constant")
    run_training(config.replace(lrate_decay=1.0), small_shapes_h5, constant, CPU, echo=lambda s: None)
    assert not np.array_equal(params_of(constant)["W"], params_of(parts)["W"])


def test_validating_every_nth_epoch_trains_the_same_parameters(tmp_path, small_shapes_h5, tiny_config):
    """--validate-every 2 over 3 epochs validates after epochs 2 and 3 (the last) only; the parameters and
    the training rows are those of the run that validates after every epoch, bitwise."""
    config = tiny_config.replace(num_epochs=3)
    every = run_training(config, small_shapes_h5, str(tmp_path / "every"), CPU, echo=lambda s: None)
    assert every["epochs_done"] == 3
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", write_json(tmp_path / "c.json", config.to_dict()),
                    "--out", tmp_path / "second", "--validate-every", 2, "--device", "cpu", "--no-compile")
    assert result.exit_code == 0, result.output
    assert_same_params(params_of(tmp_path / "every"), params_of(tmp_path / "second"))
    rows, second = metrics_of(tmp_path / "every"), metrics_of(tmp_path / "second")
    assert [r["epoch"] for r in second if "valid_denoising_cost" in r] == [2, 3]

    def training_rows(metrics):
        return [{k: v for k, v in r.items() if not k.startswith("valid_")} for r in metrics]
    assert training_rows(second) == training_rows(rows) and second[1:] == rows[1:]
    with pytest.raises(TaggerError, match="validate_every must be >= 1"):
        Trainer(config, small_shapes_h5, str(tmp_path / "zero"), CPU, validate_every=0, echo=lambda s: None)


def test_the_grouping_is_scored_on_the_first_validation_examples_without_changing_training(tmp_path, small_shapes_h5,
                                                                                            tiny_config):
    """With true masks in the file, each validation also scores the grouping (AMI, ARI per iteration) of the
    split's first N examples, drawing its noise after the validation cost's; training, its parameters and the
    validation cost are those of a run without it (--valid-grouping 0)."""
    lines = []
    run_training(tiny_config, small_shapes_h5, str(tmp_path / "scored"), CPU, echo=lines.append, valid_grouping=60)
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", write_json(tmp_path / "c.json", tiny_config.to_dict()),
                    "--out", tmp_path / "unscored", "--valid-grouping", 0, "--device", "cpu", "--no-compile")
    assert result.exit_code == 0, result.output
    assert "valid AMI" not in result.output
    assert_same_params(params_of(tmp_path / "scored"), params_of(tmp_path / "unscored"))
    scored, unscored = metrics_of(tmp_path / "scored"), metrics_of(tmp_path / "unscored")
    grouping = ("valid_ami", "valid_ari", "valid_grouping_examples")
    assert [{k: v for k, v in r.items() if k not in grouping} for r in scored] == unscored
    assert all(not set(grouping) & set(r) for r in unscored)
    last = scored[-1]
    assert last["valid_grouping_examples"] == 60 and len(last["valid_ami"]) == len(last["valid_ari"]) == 2
    assert f"valid AMI per iteration {last['valid_ami'][0]:.3f} {last['valid_ami'][1]:.3f} (first 60)" in lines[-1]
    # the same scores from the epoch's parameters: the validation's generator after the cost's pass
    model = Tagger(tiny_config, params=params_of(tmp_path / "scored"))
    valid = load_examples(small_shapes_h5, "valid", tiny_config, CPU, labels=False, masks=True)
    generator = trainer_module.validation_generator(tiny_config.seed, 2, CPU)
    with torch.no_grad():
        cost = model.evaluate(Split(valid.x, None), batch_size=50, generator=generator)["denoising_cost"]
        again = model.evaluate(Split(valid.x[:60], None, valid.masks[:60]), batch_size=50, generator=generator)
    assert cost == pytest.approx(last["valid_denoising_cost"], rel=1e-6)
    assert again["ami"] == pytest.approx(last["valid_ami"], abs=1e-9)
    assert again["ari"] == pytest.approx(last["valid_ari"], abs=1e-9)
    # more examples than the split holds: all of them
    trainer = Trainer(tiny_config, small_shapes_h5, str(tmp_path / "all"), CPU, valid_grouping=10_000, echo=lambda s: None)
    assert len(trainer.valid_masks) == len(valid.x)
    with pytest.raises(TaggerError, match="valid_grouping must be >= 0"):
        Trainer(tiny_config, small_shapes_h5, str(tmp_path / "bad"), CPU, valid_grouping=-1, echo=lambda s: None)


def test_an_early_stop_rule_ends_training_after_an_epoch(tmp_path, small_shapes_h5, tiny_config):
    trainer = Trainer(tiny_config, small_shapes_h5, str(tmp_path / "run"), CPU, echo=lambda s: None)
    result = trainer.run(done=lambda rows: rows[-1]["epoch"] == 1)
    assert result["epochs_done"] == 1 and not result["stopped"] and tiny_config.num_epochs == 2
    assert [r["epoch"] for r in metrics_of(tmp_path / "run")] == [1]


def test_epochs_is_the_runs_total_when_resuming(tmp_path, small_shapes_h5, tiny_config):
    one = tiny_config.replace(num_epochs=1)
    run = str(tmp_path / "run")
    run_training(one, small_shapes_h5, run, CPU, echo=lambda s: None)
    result = invoke("train", "--resume", run, "--epochs", 2, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in metrics_of(run)] == [1, 2]
    run_training(tiny_config, small_shapes_h5, str(tmp_path / "whole"), CPU, echo=lambda s: None)
    assert_same_params(params_of(tmp_path / "whole"), params_of(run))


def test_sigterm_mid_run_checkpoints_and_resumes_exactly(tmp_path, small_shapes_h5, tiny_config):
    cfg = write_json(tmp_path / "tiny.json", {**TINY, "num_epochs": 1000})
    run = str(tmp_path / "run")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tagger_torch.cli import main; main()", "train", "--hdf5", small_shapes_h5,
         "--config", cfg, "--out", run, "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stdout:  # wait until training runs, then stop it wherever it is
            if line.startswith("epoch 2/"):
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped on SIGTERM" in out
    state = torch.load(os.path.join(run, "checkpoint.pt"), weights_only=True)
    done = state["epoch"] + (state["step"] > 0)  # epochs started
    result = invoke("train", "--resume", run, "--epochs", done, "--device", "cpu")
    assert result.exit_code == 0, result.output
    whole = str(tmp_path / "whole")
    run_training(tiny_config.replace(num_epochs=done), small_shapes_h5, whole, CPU, echo=lambda s: None)
    assert_same_params(params_of(whole), params_of(run))


def test_nonfinite_cost_stops_and_keeps_the_last_good_checkpoint(tmp_path, small_shapes_h5, tiny_config,
                                                                 monkeypatch):
    run = str(tmp_path / "run")
    run_training(tiny_config.replace(num_epochs=1), small_shapes_h5, run, CPU, echo=lambda s: None)
    with open(os.path.join(run, "checkpoint.pt"), "rb") as f:
        good = f.read()
    real_step = step_module.train_step

    def poisoned(*args):
        stats = real_step(*args)
        stats["cost"] = stats["cost"] * float("nan")
        return stats

    monkeypatch.setattr(step_module, "train_step", poisoned)
    with pytest.raises(TaggerError, match="NaN or inf in epoch 2.*after epoch 1"):
        run_training(tiny_config, small_shapes_h5, run, CPU, resume=True, echo=lambda s: None)
    with open(os.path.join(run, "checkpoint.pt"), "rb") as f:
        assert f.read() == good
    assert [r["epoch"] for r in metrics_of(run)] == [1]


def test_nonfinite_cost_within_an_epoch_stops_at_the_next_check(tmp_path, small_shapes_h5, tiny_config,
                                                                 monkeypatch):
    """Within an epoch the sums are copied to the host every LOG_EVERY steps without waiting for the
    device, and each copy is checked LOG_EVERY steps later: a NaN from step 2 stops training after
    step 3 (LOG_EVERY 1), naming step 2."""
    monkeypatch.setattr(trainer_module, "LOG_EVERY", 1)
    real_step, steps = step_module.train_step, []

    def poisoned_from_step_2(*args):
        steps.append(len(steps) + 1)
        stats = real_step(*args)
        if steps[-1] >= 2:
            stats["cost"] = stats["cost"] * float("nan")
        return stats

    monkeypatch.setattr(step_module, "train_step", poisoned_from_step_2)
    with pytest.raises(TaggerError, match=r"NaN or inf in epoch 1 \(by step 2\); .*no checkpoint was written"):
        run_training(tiny_config, small_shapes_h5, str(tmp_path / "run"), CPU, echo=lambda s: None)
    assert steps == [1, 2, 3]


def test_adams_form_follows_compile_and_a_resumed_run_keeps_its_own(tmp_path, small_shapes_h5, tiny_config):
    """The fused Adam goes with a compiled step (Trainer objects only: nothing compiles before a step);
    a checkpoint keeps the run's form, and one written before the form was recorded resumes with the
    foreach form that wrote it, also when that run was compiled; `--adam` on resume switches it."""
    new = Trainer(tiny_config, small_shapes_h5, str(tmp_path / "new"), CPU, compile=True, echo=lambda s: None)
    assert new.optimizer.fused
    run = str(tmp_path / "run")
    run_training(tiny_config, small_shapes_h5, run, CPU, compile=False, max_steps=2, echo=lambda s: None)
    path = os.path.join(run, "checkpoint.pt")
    state = torch.load(path, weights_only=True)
    assert state["fused_adam"] is False
    torch.save({**state, "fused_adam": True}, path)
    assert Trainer(tiny_config, small_shapes_h5, run, CPU, resume=True, echo=lambda s: None).optimizer.fused
    del state["fused_adam"]
    torch.save({**state, "compile": True}, path)
    resumed = Trainer(tiny_config, small_shapes_h5, run, CPU, resume=True, echo=lambda s: None)
    assert resumed.compile and not resumed.optimizer.fused
    # an explicit form on resume switches it; each metrics line records the form its epoch used
    torch.save({**state, "compile": False}, path)
    result = invoke("train", "--resume", run, "--adam", "fused", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "fused Adam" in result.output and torch.load(path, weights_only=True)["fused_adam"] is True
    assert [row["adam"] for row in metrics_of(run)] == ["fused"] * tiny_config.num_epochs
    assert Trainer(tiny_config, small_shapes_h5, run, CPU, resume=True, fused_adam=False,
                   echo=lambda s: None).optimizer.fused is False


@pytest.mark.slow
def test_a_compiled_run_stops_and_resumes_exactly(tmp_path, small_shapes_h5, tiny_config):
    """The compiled step with the fused Adam (about a minute of compiling on 2 CPU cores)."""
    whole = run_training(tiny_config, small_shapes_h5, str(tmp_path / "whole"), CPU, compile=True, echo=lambda s: None)
    assert whole["epochs_done"] == 2
    parts = str(tmp_path / "parts")
    run_training(tiny_config, small_shapes_h5, parts, CPU, compile=True, max_steps=7, echo=lambda s: None)
    run_training(tiny_config, small_shapes_h5, parts, CPU, resume=True, echo=lambda s: None)
    assert_same_params(params_of(tmp_path / "whole"), params_of(parts))
    assert [r["compiled"] for r in metrics_of(parts)] == [True, True]


def test_default_preset_follows_the_data(small_shapes_h5):
    info = dataset_info(small_shapes_h5)
    assert resolve_config(default_preset=lambda: preset_for_data(info)).encoder_proj == (2000, 1000, 500)
    assert resolve_config("shapes50k20x20-ln", seed=7).norm == "layer"
    assert resolve_config("shapes50k20x20-ln", seed=7).seed == 7


def test_labelled_examples_are_picked_as_the_release_does():
    rng = np.random.RandomState(0)
    targets = rng.randint(0, 10, (500, 2))
    picked = labelled_indices(targets, seed=5, labeled_samples=30, batch_size=10)
    order = np.arange(500)
    np.random.RandomState(5).shuffle(order)  # data.py: the train index shuffled by RandomState(seed)
    expected = [i for c in range(10) for i in [j for j in order if targets[j, 0] == c][:3]]
    assert picked.tolist() == expected
    assert labelled_indices(targets, 5, None, 10).tolist() == order.tolist()
    with pytest.raises(TaggerError, match="multiple of the 10 classes"):
        labelled_indices(targets, 5, 25, 10)
    with pytest.raises(TaggerError, match="smaller than batch_size"):
        labelled_indices(targets, 5, 10, 20)


@pytest.fixture(scope="module")
def labelled_h5(tmp_path_factory):
    return write_labelled_h5(tmp_path_factory.mktemp("labelled") / "labelled.h5")


STAGE1 = {"in_dim": [1, 4, 4], "input_type": "continuous", "encoder_proj": [16, 8], "n_groups": 3,
          "n_iterations": 2, "zhat_init_value": 0.5, "objects_per_sample": 2, "lr": 0.003, "batch_size": 20,
          "valid_batch_size": 20, "num_epochs": 1, "seed": 1}


def test_stage_two_classifies_from_loaded_stage_one(tmp_path, labelled_h5):
    stage1 = tmp_path / "stage1"
    result = invoke("train", "--hdf5", labelled_h5, "--config", write_json(tmp_path / "s1.json", STAGE1),
                    "--out", stage1, "--device", "cpu")
    assert result.exit_code == 0, result.output
    stage2_cfg = write_json(tmp_path / "s2.json", {**STAGE1, "encoder_proj": [16, 8, 6, 11], "class_cost_x": 0.1,
                                                   "num_epochs": 2})
    stage2 = tmp_path / "stage2"
    result = invoke("train", "--hdf5", labelled_h5, "--config", stage2_cfg, "--load-from", stage1,
                    "--labeled-samples", 20, "--out", stage2, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "loaded" in result.output
    # shared names (the input projection, f_1_W, the bottom combinator ...) start from stage 1
    config2 = load_config(str(stage2 / "config.json"))
    assert config2.labeled_samples == 20
    rows = metrics_of(stage2)
    assert {"train_class_cost", "train_class_error", "valid_class_cost", "valid_class_error"} <= set(rows[-1])
    assert len(rows[-1]["valid_class_error"]) == 2
    # the training cost holds the class term: cost = mean denoising + 0.1 * class cost
    r = rows[0]
    assert r["train_cost"] == pytest.approx(np.mean(r["train_denoising_cost"]) + 0.1 * r["train_class_cost"],
                                            rel=1e-5)
    result = invoke("evaluate", "--run", stage2, "--hdf5", labelled_h5, "--iterations", 3, "--out",
                    tmp_path / "m.json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "m.json") as f:
        scores = json.load(f)
    assert len(scores["class_error"]) == len(scores["ami"]) == 3
    assert "class error %" in result.output


def test_stage_one_params_load_by_name(tmp_path, labelled_h5):
    stage1 = str(tmp_path / "stage1")
    run_training(from_dict(STAGE1), labelled_h5, stage1, CPU, echo=lambda s: None)
    stage2 = str(tmp_path / "stage2")
    cfg2 = from_dict({**STAGE1, "encoder_proj": [16, 8, 6, 11], "class_cost_x": 0.1, "labeled_samples": 20})
    trainer = Trainer(cfg2, labelled_h5, stage2, CPU, load_from=stage1, echo=lambda s: None)
    loaded = params_of(stage1)
    state = trainer.model.state_dict()
    for name in ("W", "b", "z_u_W", "m_u_W", "v", "f_1_W", "g_0_W", "g_0_a1"):
        assert np.array_equal(state[name].numpy(), loaded[name]), name


@pytest.mark.parametrize("case, message", [
    ("unknown_field", "unknown config field"),
    ("unknown_preset", "unknown preset"),
    ("input_size", "does not match"),
    ("no_labels", "has no labels"),
    ("unwritable", "cannot write to the run directory"),
    ("no_resume", "nothing to resume"),
    ("missing_data", "not found"),
])
def test_bad_inputs_give_one_line_and_exit_2(tmp_path, small_shapes_h5, case, message):
    base = ["train", "--hdf5", small_shapes_h5, "--out", tmp_path / "run", "--device", "cpu"]
    args = {
        "unknown_field": base + ["--config", write_json(tmp_path / "c1.json", {**TINY, "learning_rate": 1})],
        "unknown_preset": base + ["--preset", "shapes-huge"],
        "input_size": base + ["--config", write_json(tmp_path / "c2.json", {**TINY, "in_dim": [1, 28, 28]})],
        "no_labels": base + ["--config", write_json(tmp_path / "c3.json", {**TINY, "encoder_proj": [8, 11],
                                                                           "class_cost_x": 0.1})],
        "unwritable": ["train", "--hdf5", small_shapes_h5, "--config", write_json(tmp_path / "c.json", TINY),
                       "--out", tmp_path / "c.json" / "run"],
        "no_resume": ["train", "--resume", tmp_path / "nothing"],
        "missing_data": ["train", "--hdf5", tmp_path / "none.h5"],
    }[case]
    result = invoke(*args)
    assert_one_line_error(result, message)

"""`tagger-torch reproduce`: a tiny plan (stage 1, then stage 2 from it, shipped) runs, is killed
(SIGKILL, SIGTERM), resumes to the same parameters, publishes, and `status` reports it; the paper's
plan is consistent; bad input gets one line and exit 2."""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tagger_torch.files import read_npz
from tagger_torch.reproduce.plan import PAPER, PAPER_TABLE2, TABLE2_COLUMNS, column
from tagger_torch.errors import TaggerError
from tagger_torch.reproduce.state import RunState, has_flattened, run_state, status_table
from tagger_torch.reproduce.table2 import GROUPS_PICTURE, _run_section, cell_text, write_progress
from tagger_torch.reproduce.plan import Flattened, load_plan
from tiny import assert_one_line_error, invoke

TINY_MODEL = {"encoder_proj": [60, 30, 12], "n_groups": 3, "batch_size": 50, "valid_batch_size": 50, "seed": 3}
PLAN = {
    "data": {"tiny": {"make": ["shapes", "--n-train", "1500", "--n-valid", "100", "--n-test", "100",
                               "--n-single", "10"], "file": "tiny.h5"}},
    "runs": [
        {"name": "tiny-stage1", "preset": "shapes50k20x20-ln", "data": "tiny", "epochs": 3, "changes": TINY_MODEL,
         "validate_every": 2,
         "cell": {"table": "check", "row": "tagger", "column": "tiny", "paper": "-"}},
        {"name": "tiny-stage2", "preset": "shapes50k20x20-ln", "data": "tiny", "epochs": 2, "after": "tiny-stage1",
         "changes": {**TINY_MODEL, "lr": 0.001}, "ship": True, "iterations": 3, "description": "a tiny model"},
    ],
}


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    """(plan.json, a data folder holding its data file) shared by every run of this module."""
    root = tmp_path_factory.mktemp("plan")
    path = root / "plan.json"
    path.write_text(json.dumps(PLAN))
    data = root / "data"
    result = invoke("make-dataset", "shapes", "--n-train", 1500, "--n-valid", 100, "--n-test", 100, "--n-single", 10,
                    "--out", data / "tiny.h5")
    assert result.exit_code == 0, result.output
    return str(path), str(data)


def command(verb, plan, root, *more):
    return [sys.executable, "-m", "tagger_torch", "reproduce", verb, *more, "--plan", plan[0], "--data-dir", plan[1],
            "--runs-dir", str(root / "runs"), "--results", str(root / "results"), "--readme", ""]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread: the same floats in every process


def reproduce(verb, plan, root, *more):
    return subprocess.run(command(verb, plan, root, *more), capture_output=True, text=True, env=ENV, timeout=600)


def interrupted(plan, root, signum, wait_for=("runs", "tiny-stage1", "checkpoint.pt")):
    """`reproduce run` stopped by `signum` once the file `wait_for` exists (default: stage 1's first
    checkpoint)."""
    process = subprocess.Popen(command("run", plan, root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=ENV)
    checkpoint = root.joinpath(*wait_for)
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert not (root / "results" / "tiny-stage2" / "publish.json").exists(), "the plan finished before the signal"
    process.send_signal(signum)
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


@pytest.fixture(scope="module")
def uninterrupted(plan, tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    done = reproduce("run", plan, root)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, done.stdout


def same_params(a, b):
    for stage in ("tiny-stage1", "tiny-stage2"):
        pa, pb = read_npz(str(a / "runs" / stage / "params.npz")), read_npz(str(b / "runs" / stage / "params.npz"))
        assert pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa), stage


def test_the_plan_trains_each_stage_and_publishes(uninterrupted):
    root, output = uninterrupted
    assert "loaded" in output and "tiny-stage1" in output  # stage 2 starts from stage 1's parameters
    folder = root / "results" / "tiny-stage2"
    assert {"params-fp16.npz", "config.json", "test.json", "publish.json", "figure4.png"} <= set(os.listdir(folder))
    assert json.loads((folder / "publish.json").read_text())["training"]["epochs"] == 2
    for stage, validated in (("tiny-stage1", [2, 3]), ("tiny-stage2", [1, 2])):  # validate_every 2 and 1
        rows = [json.loads(line) for line in (root / "runs" / stage / "metrics.jsonl").read_text().splitlines()]
        assert len(rows) == validated[-1] and [r["epoch"] for r in rows if "valid_denoising_cost" in r] == validated
    cell = json.loads((root / "results" / "table2" / "tiny-stage1.json").read_text())  # a cell scored from float32
    scored = json.loads((root / "runs" / "tiny-stage1" / "test.json").read_text())
    assert cell["test"] == scored and cell["epochs"] == 3 and cell["stopped"] == "epochs"
    assert cell["protocol"]["config"]["encoder_proj"] == [60, 30, 12] and len(scored["ami"]) == 3


def test_killed_run_resumes_to_the_same_parameters(plan, uninterrupted, tmp_path):
    """Killed after stage 1 published its first epoch's progress (written after each epoch, before
    the next); resumed, it reaches the uninterrupted run's parameters."""
    progress_file = ("results", "progress", "tiny-stage1", "progress.json")
    code, output = interrupted(plan, tmp_path, signal.SIGKILL, wait_for=progress_file)
    assert code == -signal.SIGKILL
    progress = json.loads(tmp_path.joinpath(*progress_file).read_text())
    assert progress["protocol_epochs"] == 3 and 1 <= progress["epochs"] < 3
    validated = progress["last_validated"]  # validate_every 2: none after epoch 1
    assert validated is None if progress["epochs"] == 1 else validated["epoch"] == 2
    status = reproduce("status", plan, tmp_path)
    assert status.returncode == 0 and "tiny-stage1" in status.stdout
    again = reproduce("run", plan, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    same_params(uninterrupted[0], tmp_path)


def test_sigterm_saves_publishes_progress_and_resumes(plan, uninterrupted, tmp_path):
    code, output = interrupted(plan, tmp_path, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, output
    assert "stopped on SIGTERM" in output
    progress = json.loads((tmp_path / "results" / "progress" / "tiny-stage1" / "progress.json").read_text())
    assert progress["protocol_epochs"] == 3 and progress["epochs"] < 3
    assert (tmp_path / "results" / "progress" / "tiny-stage1" / "curves.png").exists()
    again = reproduce("run", plan, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming" in again.stdout
    same_params(uninterrupted[0], tmp_path)
    assert not (tmp_path / "results" / "progress" / "tiny-stage1" / "progress.json").exists()


def test_a_run_continues_from_its_snapshot_on_another_machine(plan, uninterrupted, tmp_path):
    """Killed after stage 1 published a snapshot, its run directory then lost with the machine: `run`
    remakes the directory from results/progress/ and finishes the plan, the restart on record."""
    resume_file = ("results", "progress", "tiny-stage1", "resume.json")
    code, _ = interrupted(plan, tmp_path, signal.SIGKILL, wait_for=resume_file)
    assert code == -signal.SIGKILL
    epoch = json.loads(tmp_path.joinpath(*resume_file).read_text())["epoch"]
    assert 1 <= epoch < 3
    shutil.rmtree(tmp_path / "runs")  # the machine is gone; results/ (the work tree) stays
    status = reproduce("status", plan, tmp_path)
    assert status.returncode == 0 and f"tiny-stage1 snapshot {epoch}/3" in " ".join(status.stdout.split())
    again = reproduce("run", plan, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"remade it from the float16 snapshot of epoch {epoch}" in again.stdout
    assert "Adam starts again" in again.stdout
    run = json.loads((tmp_path / "runs" / "tiny-stage1" / "run.json").read_text())
    assert [r["epoch"] for r in run["restarts"]] == [epoch]
    rows = [json.loads(ln) for ln in (tmp_path / "runs" / "tiny-stage1" / "metrics.jsonl").read_text().splitlines()]
    before = [json.loads(ln) for ln in (uninterrupted[0] / "runs" / "tiny-stage1" / "metrics.jsonl").read_text()
              .splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["train_cost"] for r in rows[:epoch]] == [r["train_cost"] for r in before[:epoch]]
    cell = json.loads((tmp_path / "results" / "table2" / "tiny-stage1.json").read_text())
    assert cell["epochs"] == 3 and cell["run"]["run"]["restarts"][0]["epoch"] == epoch
    assert not (tmp_path / "results" / "progress" / "tiny-stage1").exists()


def test_snapshot_round_trip(uninterrupted, tmp_path):
    """write_snapshot (twice: the second leaves the files as they are) then restore_snapshot: the
    checkpoint's parameters rounded to float16, its noise generator and epoch, no optimizer state; a
    snapshot whose parameters changed is refused."""
    import torch
    from tagger_torch.training.rundir import load_checkpoint
    from tagger_torch.training.snapshot import RESUME, restore_snapshot, write_snapshot

    run = str(uninterrupted[0] / "runs" / "tiny-stage1")
    assert write_snapshot(run, str(tmp_path / "snap")) == 3
    written = {f: (tmp_path / "snap" / f).stat().st_mtime_ns for f in os.listdir(tmp_path / "snap")}
    assert write_snapshot(run, str(tmp_path / "snap")) == 3  # the same state again: no file rewritten
    assert written == {f: (tmp_path / "snap" / f).stat().st_mtime_ns for f in os.listdir(tmp_path / "snap")}
    assert restore_snapshot(str(tmp_path / "snap"), str(tmp_path / "run")) == 3
    original, restored = (load_checkpoint(os.path.join(d, "checkpoint.pt")) for d in (run, str(tmp_path / "run")))
    assert restored["optimizer"] is None and restored["epoch"] == 3 and restored["step"] == 0
    assert torch.equal(original["generator"], restored["generator"])
    assert original["model"].keys() == restored["model"].keys()
    for name, value in original["model"].items():
        assert torch.equal(value.half().float(), restored["model"][name]), name
    params = read_npz(str(tmp_path / "run" / "params.npz"))
    assert all(np.array_equal(params[k], restored["model"][k].numpy()) for k in params)
    resume = json.loads((tmp_path / "snap" / RESUME).read_text())
    (tmp_path / "snap" / RESUME).write_text(json.dumps({**resume, "params_sha256": "0" * 64}))
    with pytest.raises(TaggerError, match="inconsistent"):
        restore_snapshot(str(tmp_path / "snap"), str(tmp_path / "other"))


def test_a_shipped_stage1_without_its_directory_feeds_stage2(plan, tmp_path):
    """Stage 2 loads a finished stage 1 from its run directory, or, when that is gone, from its shipped
    float16 parameters; an unshipped stage 1 without a directory is an error."""
    from tagger_torch.files import save_npz
    from tagger_torch.reproduce import runner
    from tagger_torch.reproduce.plan import load_plan

    loaded = load_plan(plan[0])
    stage1 = dataclasses.replace(loaded.run("tiny-stage1"), ship=True)
    loaded = dataclasses.replace(loaded, runs=tuple(stage1 if r.name == "tiny-stage1" else r for r in loaded.runs))
    places = runner.Places(str(tmp_path / "runs"), plan[1], str(tmp_path / "results"), None, loaded)
    shipped = tmp_path / "results" / "tiny-stage1"
    shipped.mkdir(parents=True)
    (shipped / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)))
    with pytest.raises(TaggerError, match="finished, but neither its run directory"):
        runner.check_stage1(loaded.run("tiny-stage2"), places)
    save_npz(str(shipped / "params-fp16.npz"), {"W": np.zeros((2, 2))}, dtype=np.float16)
    assert runner.check_stage1(loaded.run("tiny-stage2"), places) == str(shipped)
    (tmp_path / "runs" / "tiny-stage1").mkdir(parents=True)
    assert runner.check_stage1(loaded.run("tiny-stage2"), places) == str(tmp_path / "runs" / "tiny-stage1")


def test_status_reports_every_run(plan, uninterrupted):
    status = reproduce("status", plan, uninterrupted[0])
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:3]}
    assert rows["tiny-stage1"][1:3] == ["published", "3/3"]
    last = json.loads((uninterrupted[0] / "runs" / "tiny-stage1" / "metrics.jsonl").read_text().splitlines()[-1])
    assert rows["tiny-stage1"][3] == f"{last['valid_denoising_cost'][-1]:.4f}"
    assert rows["tiny-stage1"][5] == f"{last['valid_ami'][-1]:.2f}" and last["valid_grouping_examples"] == 100
    assert rows["tiny-stage2"][1:3] == ["published", "2/2"]
    again = reproduce("run", plan, uninterrupted[0])  # nothing left to do
    assert again.returncode == 0 and "tiny-stage1: published (3 epochs)" in again.stdout
    assert "tiny-stage2: published (2 epochs)" in again.stdout


def test_a_failed_publish_does_not_stop_the_plan(plan, tmp_path, monkeypatch):
    """A finished run whose publishing fails is reported and the plan goes on to the next run (which
    needs only the run directory); the exit status is then 1."""
    from tagger_torch.publish import PublishSettings
    from tagger_torch.reproduce import runner
    from tagger_torch.reproduce.plan import load_plan

    trained, published, lines = [], [], []

    def publish(run, *args):
        published.append(run.name)
        if run.name == "tiny-stage1":
            raise RuntimeError("disk full")

    monkeypatch.setattr(runner, "train", lambda run, *args: trained.append(run.name) or {"stopped": False})
    monkeypatch.setattr(runner, "publish", publish)
    monkeypatch.setattr(runner, "check_stage1", lambda run, places: None)
    places = runner.Places(str(tmp_path / "runs"), plan[1], str(tmp_path / "results"), None, load_plan(plan[0]))
    assert runner.run_plan([], places, "cpu", "fp32", PublishSettings(), lines.append) == 1
    assert trained == published == ["tiny-stage1", "tiny-stage2"]
    assert "tiny-stage1: publishing failed (RuntimeError: disk full)" in lines[0]
    assert lines[-1] == "publishing failed for tiny-stage1"


def test_one_run_command_per_runs_dir(plan, tmp_path):
    """While a process holds RUNS_DIR/reproduce.pid, a second `reproduce run` there is refused in one line."""
    import fcntl

    (tmp_path / "runs").mkdir()
    with open(tmp_path / "runs" / "reproduce.pid", "w") as held:
        held.write("12345\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        assert_one_line_error(reproduce("run", plan, tmp_path), "another `tagger-torch reproduce run` (pid 12345)")
    status = reproduce("status", plan, tmp_path)  # reading is never locked
    assert status.returncode == 0


def test_training_goes_on_when_progress_cannot_be_written(plan, tmp_path, monkeypatch):
    """A failure to write results/progress/ (a full disk) is reported after each epoch; training goes on."""
    import torch
    from tagger_torch.publish import PublishSettings
    from tagger_torch.reproduce import runner
    from tagger_torch.reproduce.plan import load_plan

    def write_progress(results, state):
        raise TaggerError("disk full")

    monkeypatch.setattr(runner, "write_progress", write_progress)
    lines = []
    places = runner.Places(str(tmp_path / "runs"), plan[1], str(tmp_path / "results"), None, load_plan(plan[0]))
    device = torch.device("cpu")
    assert runner.run_plan(["tiny-stage1"], places, device, "fp32", PublishSettings(progress=False), lines.append) == 0
    assert "tiny-stage1: could not publish its progress after epoch 1 (disk full); training goes on" in lines
    assert (tmp_path / "results" / "table2" / "tiny-stage1.json").exists()  # trained to the end and published


def test_bad_input(plan, tmp_path):
    assert_one_line_error(reproduce("run", plan, tmp_path, "no-such-run"), "unknown run 'no-such-run'")
    assert_one_line_error(reproduce("run", plan, tmp_path, "tiny-stage2"),
                          "tiny-stage2 starts from tiny-stage1, which has no run directory")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "runs").write_text("a file")
    assert_one_line_error(reproduce("run", plan, tmp_path / "other"), "is a file, not a folder")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"runs": [{"name": "x", "preset": "shapes50k20x20", "data": "nowhere", "epochs": 1}]}))
    status = subprocess.run(command("status", (str(bad), plan[1]), tmp_path), capture_output=True, text=True, env=ENV)
    assert_one_line_error(status, "uses the data set 'nowhere'")


def test_paper_plan():
    """Every Table-2 cell has one run; stage 2 follows its stage 1; the headline runs come first."""
    runs = PAPER.runs
    assert [r.name for r in runs[:2]] == ["freq20-2mnist-tagger-stage1", "freq20-2mnist-tagger-1k"]
    cells = [(r.cell.row, r.cell.column) for r in runs if r.cell is not None and r.cell.table == "table2"]
    assert sorted(cells) == sorted((model, column(d, n)) for model, d, n in
                                   ((m, d, n) for (m, d, n) in PAPER_TABLE2) if (d, n) in TABLE2_COLUMNS)
    # the headline stage 2: the settings of the release's shipped stage-2 model (docs/baselines.md)
    stage2 = runs[1].config()
    assert (stage2.labeled_samples, stage2.n_iterations, stage2.class_cost_x, stage2.input_noise, stage2.lr,
            stage2.num_epochs) == (1000, 4, 0.05, 0.15, 0.0005, 50)
    names = [r.name for r in runs]
    for r in runs:
        r.config()  # every preset and change resolves
        if r.after is not None:
            assert names.index(r.after) < names.index(r.name)


def test_validate_every_in_the_plan():
    """Tagger's runs validate after every 5th epoch, the baselines every epoch; a stop rule needs every
    epoch's validation; status's seconds per epoch share a validation over the epochs it covers; Table 2's
    sections name the epochs validated."""
    every = {r.name: r.validate_every for r in PAPER.runs}
    assert every["freq20-2mnist-tagger-stage1"] == every["freq20-2mnist-tagger-1k"] == every["shapes-ln"] == 5
    assert every["norms-layer-s10"] == 5 and every["freq20-2mnist-convnet"] == every["mnist-fc-ladder-1k"] == 1
    stage1 = PAPER.run("freq20-2mnist-tagger-stage1")
    with pytest.raises(TaggerError, match="validate_every must be 1 with a stop rule"):
        dataclasses.replace(PAPER.run("freq20-2mnist-convnet"), validate_every=5)
    with pytest.raises(TaggerError, match="got 0"):
        dataclasses.replace(stage1, validate_every=0)
    rows = [{"epoch": e, "train_time_s": 100.0 + e} for e in range(1, 11)]
    rows[4].update(valid_time_s=50.0, valid_denoising_cost=[-0.5])
    state = RunState(stage1, "nowhere", rows, True, False, None)
    assert state.seconds_per_epoch == 108.0 + 50.0 / 5  # median of epochs 6-10, and a fifth of a validation
    moved = [{**r, "processor": "cpu A" if r["epoch"] <= 8 else "cpu B"} for r in rows]  # epochs 9, 10 elsewhere
    assert RunState(stage1, "nowhere", moved, True, False, None).seconds_per_epoch == 109.5 + 50.0 / 5
    assert "-0.5000" in status_table([state])
    run = {"epochs": 10, "train_s": 10.0, "valid_s": 1.0, "s_per_epoch": 1.1,
           "valid_class_error_per_epoch": [50.0, 40.0]}
    result = {"name": "x", "test_class_error": 30.0, "paper": "-", "stopped": "epochs", "written": "today", "cpu": "c",
              "test": {"iterations": 4, "seconds": 1.0}, "run": {**run, "valid_epochs": [5, 10]}}
    assert "* validation class error after epoch 5: 50.0, 10: 40.0." in _run_section(result)
    for every_epoch in ({**run, "valid_epochs": [1, 2]}, run):  # (a result file from before `valid_epochs`)
        assert "* validation class error per epoch: 50.0, 40.0." in _run_section({**result, "run": every_epoch})
    no_errors = {**run, "valid_class_error_per_epoch": [], "valid_epochs": []}
    assert not any("validation class error" in line for line in _run_section({**result, "run": no_errors}))
    # the CPU's vector instruction set where the result file records it (older files do not)
    assert "written today on c; load average" in _run_section(result)[2]
    assert "written today on c (AVX2); load average" in _run_section({**result, "cpu_capability": "AVX2"})[2]


def test_a_stage_2_cell_shows_its_stage_1_in_progress_with_its_grouping(tmp_path):
    """Table 2's cell of a stage 2 not yet started: its stage 1's epochs, the AMI of its last validation
    when it was scored, and the link to its curve."""
    stage2 = PAPER.run("freq20-2mnist-tagger-1k")
    folder = tmp_path / "progress" / stage2.after
    folder.mkdir(parents=True)
    progress = {"epochs": 12, "protocol_epochs": 150, "valid_class_error_per_epoch": [],
                "last_validated": {"epoch": 10, "valid_ami": [0.1, 0.25, 0.312]}}
    (folder / "progress.json").write_text(json.dumps(progress))
    assert cell_text(str(tmp_path), stage2, {}, "P/") == (
        f"in progress: stage 1 12 of 150 epochs, valid AMI 0.31 after epoch 10 ([curve](P/{stage2.after}/curves.png))")
    (folder / "progress.json").write_text(json.dumps({**progress, "last_validated": {"epoch": 10}}))
    assert cell_text(str(tmp_path), stage2, {}, "P/") == (
        f"in progress: stage 1 12 of 150 epochs ([curve](P/{stage2.after}/curves.png))")


def test_progress_after_a_validation_of_the_grouping_draws_the_groups(plan, uninterrupted, tmp_path):
    """A grouping run whose last epoch scored its grouping (`valid_ami`) publishes groups.png beside its
    curve, and its cell links both; after an epoch without that validation nothing is drawn."""
    root, _ = uninterrupted
    run = load_plan(plan[0]).run("tiny-stage1")
    state = run_state(run, str(root / "runs"), str(tmp_path / "results"))
    assert "valid_ami" in state.rows[-1]
    folder = write_progress(str(tmp_path / "results"), state)
    with open(os.path.join(folder, GROUPS_PICTURE), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert cell_text(str(tmp_path / "results"), run, {}, "P/").endswith(
        f"([curve](P/tiny-stage1/curves.png), [groups](P/tiny-stage1/{GROUPS_PICTURE}))")
    unscored = dataclasses.replace(state, rows=[{k: v for k, v in r.items() if k != "valid_ami"} for r in state.rows])
    write_progress(str(tmp_path / "other"), unscored)
    assert not os.path.exists(tmp_path / "other" / "progress" / "tiny-stage1" / GROUPS_PICTURE)


def test_flattened_rule():
    rule = Flattened(window=2, min_epochs=3, tol=0.5)
    rows = [{"valid_class_error": [e]} for e in (50.0, 40.0, 39.8, 39.7)]
    assert has_flattened(rows, rule)  # the best of the last 2 (39.7) is not 0.5 below the best before (40.0)
    assert not has_flattened(rows[:2], rule)  # fewer than min_epochs
    assert not has_flattened(rows[:3] + [{"valid_class_error": [30.0]}], rule)


def test_norms_page_reads_the_result_files(tmp_path):
    """results/norms/README.md: one row per run of the LayerNorm comparison, the spread over seeds."""
    from tagger_torch.reproduce.norms import write_norms

    (tmp_path / "norms").mkdir()
    for seed, ami in ((10, 0.80), (11, 0.90)):
        valid = {"ami": [0.5, 0.6, 0.7, 0.75, ami], "denoising_cost": [0.1, 0.09, 0.08, 0.08, 0.08]}
        (tmp_path / "norms" / f"norms-layer-groups-s{seed}.json").write_text(json.dumps({"valid": valid}))
    text = open(write_norms(str(tmp_path))).read()
    assert "| `layer-groups` | 10 | 0.500 | 0.600 | 0.700 | 0.750 | 0.800 | 0.1000 |" in text
    assert "| `layer-groups` | 0.850 ± 0.071 | 2 |" in text
    assert "| `layer` | 10 | queued (20 ep) |" in text
    header, row = (line.count("|") for line in text.splitlines() if line.startswith("| norm | seed") or
                   line.startswith("| `layer` | 10"))
    assert header == row

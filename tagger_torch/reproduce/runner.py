"""`tagger-torch reproduce run` and `publish`: the plan's runs trained (or resumed), scored and published.

Each run trains in RUNS_DIR/NAME with the Trainer (a checkpoint at every epoch's end, every
CHECKPOINT_EVERY_S within an epoch and on SIGINT/SIGTERM), from its stage-1 run's parameters when it
has one, until its protocol is done; then its scorings are computed and results/ is written: the
shipped model (`publish.publish_run`), its Table-2 cell (`table2.write_result`), the READMEs. Until
then its progress is published after every epoch and when it stops (a signal), and running the
command again continues it: from its checkpoint, or, on a machine without its run directory, from the
float16 snapshot its progress holds (training/snapshot.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import traceback
from typing import Callable, Iterable, Iterator, List, Optional

import torch

from ..config import load_config
from ..errors import TaggerError
from ..evaluate import evaluate_model
from ..files import ensure_writable_dir, read_json, write_text
from ..publish import PublishSettings, publish_run
from ..results_readme import collect as collect_table1, update_readme_section, write_results_readme
from ..training.rundir import CHECKPOINT, CONFIG, load_model, run_params_path
from ..training.snapshot import restore_snapshot
from ..training.trainer import Trainer
from .plan import PAPER, Plan, PlannedRun
from .norms import write_norms
from .state import CELL_FOLDERS, PROGRESS, RunState, run_state
from .table2 import update_readme_table2, write_progress, write_result, write_table2

Echo = Callable[[str], None]
PID_FILE = "reproduce.pid"  # RUNS_DIR/reproduce.pid: the pid of the `reproduce run` training there (runs_dir_lock)


class Places:
    """Where the plan's files go: run directories, data files, results/, and the README with the tables."""

    def __init__(self, runs_dir: str, data_dir: Optional[str], results: str, readme: Optional[str] = None,
                 plan: Plan = PAPER):
        self.plan = plan
        self.runs_dir = os.path.expanduser(runs_dir)
        self.data_dir = os.path.expanduser(data_dir) if data_dir else os.path.join(self.runs_dir, "data")
        self.results = results
        self.readme = readme

    def data(self, name: str) -> str:
        return os.path.join(self.data_dir, self.plan.data[name][1])

    def data_files(self) -> dict:
        return {name: self.data(name) for name in self.plan.data}

    def state(self, run: PlannedRun) -> RunState:
        return run_state(run, self.runs_dir, self.results)

    def check_runs_dir(self) -> None:
        """TaggerError unless RUNS_DIR is (or can be made) a writable folder."""
        if os.path.exists(self.runs_dir) and not os.path.isdir(self.runs_dir):
            raise TaggerError(f"--runs-dir {self.runs_dir} is a file, not a folder")
        ensure_writable_dir(self.runs_dir, "--runs-dir ")


@contextlib.contextmanager
def runs_dir_lock(runs_dir: str) -> Iterator[None]:
    """Hold RUNS_DIR/reproduce.pid (this process's pid, under an exclusive lock that ends with the
    process, kill -9 included) while the block runs; TaggerError when another process holds it: two
    `reproduce run` in one folder would train the same run directories at once."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = os.path.join(runs_dir, PID_FILE)
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise TaggerError(f"another `tagger-torch reproduce run` (pid {pid}) is training in {runs_dir}; "
                              f"stop it first (kill -TERM {pid}) or use another --runs-dir") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()


def selected(names: Iterable[str], plan: Plan) -> List[PlannedRun]:
    """The named runs (all when none), in the plan's order; TaggerError for an unknown name."""
    names = list(names)
    for name in names:
        plan.run(name)
    return [run for run in plan.runs if not names or run.name in names]


def make_data(places: Places, name: str, echo: Echo) -> str:
    """The data file of the plan's data set `name`, generated with `make-dataset` when missing."""
    path = places.data(name)
    if not os.path.isfile(path):
        args = [sys.executable, "-m", "tagger_torch", "make-dataset", *places.plan.data[name][0], "--out", path]
        echo(f"making {path}: tagger-torch {' '.join(args[3:])}")
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise TaggerError(f"making {path} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return path


def check_stage1(run: PlannedRun, places: Places) -> Optional[str]:
    """Where `run` loads the parameters of the run it starts from: that run's directory, or, when the
    directory is gone (another machine), its shipped model (results/NAME/, float16). None for a run
    without a stage 1; TaggerError when the stage 1 is missing or unfinished."""
    if run.after is None:
        return None
    before = places.state(places.plan.run(run.after))
    if not before.finished:
        where = "has no run directory" if not before.rows else f"has {before.epochs} of {before.run.epochs} epochs"
        raise TaggerError(f"{run.name} starts from {run.after}, which {where} in {places.runs_dir}; "
                          f"run it first: tagger-torch reproduce run {run.after}")
    if os.path.isdir(before.directory):
        return before.directory
    shipped = os.path.join(places.results, run.after)
    if before.run.ship and run_params_path(shipped) is not None:
        return shipped
    raise TaggerError(f"{run.name} starts from {run.after}, which finished, but neither its run directory "
                      f"{before.directory} nor its shipped parameters ({shipped}) are here")


def train(run: PlannedRun, places: Places, device: torch.device, precision: str, echo: Echo,
          progress: Optional[bool], fused_adam: Optional[bool] = None) -> dict:
    """Train (or resume) `run` until its protocol is done or a signal stops it; `Trainer.run`'s result.
    fused_adam: Adam's form (`Trainer`; None: a resumed run's own, else as the Trainer picks)."""
    config, state = run.config(), places.state(run)
    hdf5 = make_data(places, run.data, echo)
    if state.snapshot is not None:
        epoch = restore_snapshot(state.snapshot, state.directory)
        echo(f"{run.name}: {state.directory} had no checkpoint; remade it from the float16 snapshot of epoch "
             f"{epoch} in {state.snapshot}")
    if os.path.isfile(os.path.join(state.directory, CHECKPOINT)):
        saved = load_config(os.path.join(state.directory, CONFIG)).to_dict()
        changed = sorted(k for k, v in config.to_dict().items() if saved.get(k) != v)
        if changed:
            raise TaggerError(f"{state.directory} holds a run whose config differs from the plan's {run.name} in "
                              f"{', '.join(changed)}; move it away to start the plan's run")
        echo(f"{run.name}: resuming at epoch {state.epochs + 1} of {run.epochs}")
        trainer = Trainer(config, hdf5, state.directory, device, resume=True, precision="auto", echo=echo,
                          validate_every=run.validate_every, fused_adam=fused_adam)
    else:
        stage1 = check_stage1(run, places)
        echo(f"{run.name}: training {run.epochs} epochs into {state.directory}")
        trainer = Trainer(config, hdf5, state.directory, device, precision=precision, echo=echo,
                          load_from=stage1, validate_every=run.validate_every,
                          fused_adam=fused_adam)

    def after_epoch(rows: List[dict]) -> bool:
        """The run's progress in results/ (so a machine taken back leaves it current) until its protocol
        is done (RunState.finished: all epochs, or a baseline's validation flattened); True ends training.
        Training goes on when results/ cannot be written (the run directory holds everything)."""
        state = places.state(run)
        if not state.finished:
            try:
                write_progress(places.results, state)
                write_readmes(places, echo=lambda text: None)
            except (TaggerError, OSError) as e:
                echo(f"{run.name}: could not publish its progress after epoch {state.epochs} ({e}); training goes on")
        return state.finished

    return trainer.run(progress=progress, done=after_epoch)


def score(run: PlannedRun, places: Places, echo: Echo, progress: bool) -> dict:
    """RUNS_DIR/NAME/<case>.json for each scoring of a finished run (kept while params.npz is older)."""
    state = places.state(run)
    params = os.path.join(state.directory, "params.npz")
    scored, model = {}, None
    for case in run.scorings:
        path = os.path.join(state.directory, f"{case.key}.json")
        if os.path.isfile(path) and os.path.getmtime(path) >= os.path.getmtime(params):
            scored[case.key] = read_json(path)
            continue
        echo(f"{run.name}: scoring {case.description} ...")
        if model is None:
            _, model = load_model(run=state.directory)
        scored[case.key] = evaluate_model(model, make_data(places, case.data, echo), case.split, seed=0,
                                          progress=progress, n_groups=case.groups, n_iterations=run.iterations)
        write_text(path, json.dumps(scored[case.key], indent=2) + "\n")
    return scored


def publish(run: PlannedRun, places: Places, settings: PublishSettings, echo: Echo) -> None:
    """results/ for `run`: its progress while unfinished; once finished its shipped model, its cell, the
    READMEs (results/README.md, results/table2/README.md and the README's sections)."""
    state = places.state(run)
    if not state.finished:
        if not state.rows:
            raise TaggerError(f"{run.name} has not trained an epoch in {places.runs_dir}: nothing to publish")
        echo(f"{run.name}: {state.epochs} of {run.epochs} epochs; progress in "
             f"{write_progress(places.results, state)}")
    else:
        directory = state.directory if os.path.isdir(state.directory) else None
        if run.ship:
            for case in run.scorings:
                make_data(places, case.data, echo)
            publish_run(directory, run, places.results, places.data_files(), settings, echo)
        if run.cell is not None and run.cell.table in CELL_FOLDERS:
            if directory is None:
                raise TaggerError(f"{run.name}'s run directory {state.directory} is gone: its cell stays as published")
            first = run.scorings[0].key
            scored = (read_json(os.path.join(places.results, run.name, f"{first}.json")) if run.ship
                      else score(run, places, echo, settings.progress)[first])
            stage1 = None if run.after is None else places.state(places.plan.run(run.after))
            key = "class_error" if "class_error" in scored else "ami"
            echo(f"{run.name}: {first} {key} {scored[key][-1]:.3f} at T={len(scored[key])} (paper {run.cell.paper}); "
                 f"{write_result(places.results, state, scored, stage1)}")
        shutil.rmtree(os.path.join(places.results, PROGRESS, run.name), ignore_errors=True)
    write_readmes(places, echo)


def write_readmes(places: Places, echo: Echo) -> None:
    echo(f"wrote {write_results_readme(places.results)}, {write_table2(places.results)} and "
         f"{write_norms(places.results)}")
    if places.readme is not None:
        update_readme_section(places.readme, collect_table1(places.results))
        if update_readme_table2(places.readme, places.results):
            echo(f"updated the Table 1 and Table 2 sections of {places.readme}")


def run_plan(names: Iterable[str], places: Places, device: torch.device, precision: str, settings: PublishSettings,
             echo: Echo, progress: Optional[bool] = None, fused_adam: Optional[bool] = None) -> int:
    """Train, score and publish the named runs (all: the whole plan) in the plan's order; stops at the
    first run a signal interrupts. A finished run whose publishing fails is reported (its run directory
    stays, `reproduce publish NAME` retries) and the plan goes on, so one failure does not leave the
    cores idle. While it runs, RUNS_DIR/reproduce.pid holds its pid (`runs_dir_lock`: a second one in the
    same folder is refused). Returns the exit status: 128 + the signal's number after a signal, 1 when a
    publishing failed, else 0."""
    runs, failed = selected(names, places.plan), []
    places.check_runs_dir()
    with runs_dir_lock(places.runs_dir):
        for run in runs:  # named runs whose stage 1 is not among them fail before any work
            if run.after is not None and run.after not in {r.name for r in runs}:
                check_stage1(run, places)
        for run in runs:
            state = places.state(run)
            if state.stage == "published":
                echo(f"{run.name}: published ({state.epochs} epochs)")
                continue
            if not state.finished:
                result = train(run, places, device, precision, echo, progress, fused_adam)
                if result["stopped"]:
                    publish(run, places, settings, echo)
                    return 128 + result["signal"] if result["signal"] else 0
            try:
                publish(run, places, settings, echo)
            except Exception as e:  # noqa: BLE001 -- the trained run stands; the next runs need only its directory
                if not isinstance(e, TaggerError):
                    traceback.print_exc()
                echo(f"{run.name}: publishing failed ({type(e).__name__}: {e}); its run directory stays, "
                     f"`tagger-torch reproduce publish {run.name}` retries it; going on with the plan")
                failed.append(run.name)
        if failed:
            echo(f"publishing failed for {', '.join(failed)}")
        return 1 if failed else 0

"""DDP (docs/speed.md): two gloo processes after one step hold the parameters of one process that
averages the gradients of the same two batches; `torchrun ... train` writes from rank 0 and resumes."""
import contextlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from parity_tests.cases import perturbed_params
from parity_tests.compare import assert_close
from parity_tests.tolerances import ddp_step_tolerance
from tagger_torch.config import from_dict
from tagger_torch.distributed import StopVote, exit_now, rank_seed
from tagger_torch.model import Tagger
from tagger_torch.models import Batch
from tagger_torch.optim import BlocksAdam
from tagger_torch.training.step import make_train_step
from tiny import TINY

# Both sides of the DDP comparison run on this many threads: BLAS splits its sums by thread, so
# different thread counts round the gradients differently (see tolerances.ddp_step_tolerance).
THREADS = 1

DDP_STEP = {**TINY, "batch_size": 20, "valid_batch_size": 20}
# a classifying config: the labelled pass is a second forward before the one backward
DDP_STEP_CLASSIFY = {**DDP_STEP, "encoder_proj": [24, 12, 11], "class_cost_x": 0.5}


def start_params(config):
    """The release init moved off its symmetric point (where the decoder outputs 0), as torch tensors."""
    return {name: torch.from_numpy(np.asarray(value)) for name, value in perturbed_params(config, seed=1, scale=0.3).items()}


def batches(config, world):
    """Each rank's (x, x_labelled, labels), drawn up front so both sides use the same data."""
    g = torch.Generator().manual_seed(0)
    B, D = config.batch_size, config.input_size
    out = []
    for _ in range(world):
        x = (torch.rand(B, D, generator=g) < 0.3).float()
        if config.class_cost_x > 0:
            out.append((x, (torch.rand(B, D, generator=g) < 0.3).float(),
                        torch.randint(0, config.n_classes, (B, 1), generator=g)))
        else:
            out.append((x, None, None))
    return out


def one_ddp_step(rank, world, init_file, config_dict, out_dir):
    """One rank: join the gloo group, one training step through make_train_step, save the parameters,
    and exit with status 0; an exception leaves through mp.spawn's error file as usual."""
    torch.set_num_threads(THREADS)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        config = from_dict(config_dict)
        model = Tagger(config, params=start_params(config))
        step = make_train_step(model, BlocksAdam(model.parameters(), lr=config.lr))
        generator = torch.Generator().manual_seed(rank_seed(config.seed, rank))
        step(Batch(*batches(config, world)[rank]), generator)
        torch.save(model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    # past the interpreter's teardown, where a gloo process aborts now and then (distributed.exit_now)
    exit_now(0)


@contextlib.contextmanager
def num_threads(n):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def averaged_step(config, world):
    """One process on THREADS threads, as each rank: the gradients of the ranks' batches (same noise
    draws), averaged, one Adam step. Returns the parameters and each parameter's gradient per rank."""
    model = Tagger(config, params=start_params(config))
    grads = {name: [] for name, _ in model.named_parameters()}
    with num_threads(THREADS):
        for r, (x, x_lab, labels) in enumerate(batches(config, world)):
            generator = torch.Generator().manual_seed(rank_seed(config.seed, r))
            model.zero_grad(set_to_none=True)
            cost = model(x, generator=generator).denoising_cost.mean()
            if config.class_cost_x > 0:
                cost = cost + config.class_cost_x * model(x_lab, generator=generator, labels=labels).class_cost[-1]
            cost.backward()
            for name, p in model.named_parameters():
                grads[name].append(p.grad.clone())
        for name, p in model.named_parameters():
            p.grad = sum(grads[name]) / world
        BlocksAdam(model.parameters(), lr=config.lr).step()
    return model.state_dict(), grads


@pytest.mark.parametrize("config_dict", [DDP_STEP, DDP_STEP_CLASSIFY], ids=["denoising", "classifying"])
def test_ddp_step_equals_one_process_averaging_the_gradients(tmp_path, config_dict):
    world = 2
    mp.spawn(one_ddp_step, args=(world, str(tmp_path / "init"), config_dict, str(tmp_path)), nprocs=world)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    config = from_dict(config_dict)
    expected, grads = averaged_step(config, world)
    start = start_params(config)
    assert set(expected) == set(grads)
    for name, value in expected.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # the replicas stay identical
        # the rounding of the gradients' sum over ranks, through Adam (parity_tests/tolerances.py)
        bound = ddp_step_tolerance(value.numpy(), [g.numpy() for g in grads[name]], config.lr)
        assert_close(ranks[0][name].numpy(), value.numpy(), bound, quantity=name, where="step 1",
                     context=f"DDP rank 0 vs one process averaging the ranks' gradients [world {world}]")
        assert not torch.equal(value, start[name]), name  # the step moved every parameter


def torchrun_train(tmp_path, *args):
    """`torchrun --nproc-per-node 2 tagger-torch train ARGS` on the CPU (gloo); returns the completed process."""
    script = tmp_path / "tagger_torch_cli.py"
    script.write_text("from tagger_torch.cli import main\nmain()\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script), "train", *map(str, args), "--device", "cpu"],
                          capture_output=True, text=True, timeout=300, env=env)


def test_torchrun_training_writes_from_rank_0_and_resumes_exactly(tmp_path, small_shapes_h5):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    done = torchrun_train(tmp_path, "--hdf5", small_shapes_h5, "--config", cfg, "--out", whole)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("epoch 2/2") == 1  # rank 0 alone prints
    with open(whole / "run.json") as f:
        assert json.load(f)["world_size"] == 2
    rows = metrics(whole)
    assert [(r["epoch"], r["steps"], r["world_size"]) for r in rows] == [(1, 3, 2), (2, 6, 2)]  # 6 batches = 3 steps

    first = torchrun_train(tmp_path, "--hdf5", small_shapes_h5, "--config", cfg, "--out", parts, "--max-steps", 4)
    assert first.returncode == 0 and "stopped after max_steps in epoch 2 at step 1/3" in first.stdout, first.stderr
    again = torchrun_train(tmp_path, "--resume", parts)
    assert again.returncode == 0, again.stderr
    a, b = np.load(whole / "params.npz"), np.load(parts / "params.npz")
    for name in a.files:
        assert np.array_equal(a[name], b[name]), name
    assert metrics(whole) == metrics(parts)  # the ranks' epoch statistics survive the stop, too


def metrics(run):
    with open(run / "metrics.jsonl") as f:
        return [{k: v for k, v in json.loads(line).items() if not k.endswith(("time_s", "per_s"))} for line in f]


def vote_on_each_call(rank, world, init_file, out_dir):
    """One rank: five calls of a StopVote, rank 0 raising its flag from the third on; the answers to a file."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        vote = StopVote()
        answers = [vote(rank == 0 and call >= 2) for call in range(5)]
        vote.close()
        with open(os.path.join(out_dir, f"vote{rank}.json"), "w") as f:
            json.dump(answers, f)
    finally:
        dist.destroy_process_group()
    exit_now(0)


def test_every_rank_gets_the_stop_vote_at_the_same_call(tmp_path):
    """A flag raised on one rank at call 3 is every rank's answer at call 4 (the all-reduce posted at
    one call is read at the next, so no step waits for the other ranks)."""
    mp.spawn(vote_on_each_call, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    answers = [json.loads((tmp_path / f"vote{r}.json").read_text()) for r in range(2)]
    assert answers[0] == answers[1] == [False, False, False, True, True]

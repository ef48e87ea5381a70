"""Seconds per epoch of each Table-2 model on this machine (docs/baselines.md, "Cost per epoch").

For each preset: the real Trainer on the real data file (eager fp32 steps, one thread unless
OMP_NUM_THREADS says otherwise), `--warmup` untimed steps, then `--steps` timed ones; the validation
pass is timed on the first `--valid` examples of the valid split. An epoch is
steps_per_epoch x (seconds per step) + (validation seconds scaled to the whole valid split).

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/time_table2.py --data datasets --out timings.json
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line sets it, before torch

import torch  # noqa: E402

from tagger_torch.config import get_preset  # noqa: E402
from tagger_torch.models import Split  # noqa: E402
from tagger_torch.precision import cpu_model  # noqa: E402
from tagger_torch.training.trainer import Trainer  # noqa: E402

PRESETS = ("freq20-2mnist-fc-mlp-1k", "freq20-2mnist-fc-mlp", "freq20-2mnist-fc-ladder-1k", "freq20-2mnist-fc-ladder",
           "freq20-2mnist-convnet-1k", "freq20-2mnist-convnet", "freq20-1mnist-pretrain", "freq20-1mnist-continue")


def time_preset(name: str, data: str, steps: int, warmup: int, n_valid: int) -> dict:
    config = get_preset(name)
    digits = config.objects_per_sample
    hdf5 = os.path.join(data, f"freq20-{digits}mnist.h5")
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, hdf5, out, torch.device("cpu"), precision="fp32", compile=False,
                          echo=lambda s: None)
        streams = trainer.streams
        streams.start_epoch(0, streams.epoch_order(0))
        for s in range(warmup):
            trainer.step_fn(streams.batch(s), trainer.generator)
        started = time.perf_counter()
        for s in range(warmup, warmup + steps):
            stats = trainer.step_fn(streams.batch(s), trainer.generator)
        per_step = (time.perf_counter() - started) / steps
        valid = trainer.data.valid
        started = time.perf_counter()
        trainer.model.evaluate(Split(valid.x[:n_valid], None if valid.labels is None else valid.labels[:n_valid]), batch_size=config.valid_batch_size,
                               generator=torch.Generator().manual_seed(0))
        valid_s = (time.perf_counter() - started) * valid.x.shape[0] / n_valid
    return {"preset": name, "model": config.model, "steps_per_epoch": streams.steps_per_epoch,
            "epoch_examples": streams.n_train, "s_per_step": round(per_step, 3),
            "train_s_per_epoch": round(per_step * streams.steps_per_epoch, 1), "valid_s": round(valid_s, 1),
            "s_per_epoch": round(per_step * streams.steps_per_epoch + valid_s, 1),
            "gflop_per_step": round(trainer.model.flop_per_step(config.batch_size) / 1e9, 2),
            "cost_after": float(stats["cost"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="datasets", help="folder holding freq20-1mnist.h5 and freq20-2mnist.h5")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--valid", type=int, default=1000, help="validation examples timed (then scaled)")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    for name in args.presets.split(","):
        load = os.getloadavg()[0]
        row = time_preset(name, args.data, args.steps, args.warmup, args.valid)
        row.update(load_avg_1min_before=round(load, 2), load_avg_1min_after=round(os.getloadavg()[0], 2))
        rows.append(row)
        print(json.dumps(row), flush=True)
    facts = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "nice": os.nice(0), "torch": torch.__version__,
             "when": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(facts, f, indent=2)
    print(json.dumps({k: v for k, v in facts.items() if k != "rows"}))


if __name__ == "__main__":
    main()

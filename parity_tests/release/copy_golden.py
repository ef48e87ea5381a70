"""Copy what test_parity_release.py reads from the release's golden vectors into this folder.

    python parity_tests/release/copy_golden.py /path/to/release-golden

The source folder's README.md describes its files; README.md here says what this copy keeps and how
it differs (inputs merged into inputs.npz; traces cut to the first N_STORED examples; case 5a's inputs
are case 1's and are not copied twice). Everything is written with np.savez_compressed.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
N_STORED = 25  # examples of B = 100 kept in the per-element trace arrays (the passes run on all 100)
FORWARD = ("case1_binary_bn_corrupted", "case3_continuous_2obj_class")
TRACES = ("release_trace_f64clean", "release_trace", "release_trace_float32")
TRAIN = ("f64clean_grads", "f64clean_params_after_step1", "f64clean_params_after_step2", "f64clean_params_after",
         "f64clean_train_cost", "float32_grads", "float32_params_after_step1", "float32_params_after_step2",
         "float32_params_after")


def load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def copy(src: Path) -> None:
    for case in FORWARD:
        out = HERE / case
        out.mkdir(exist_ok=True)
        shutil.copyfile(src / case / "config.json", out / "config.json")
        for name in ("params", "init_params"):
            np.savez_compressed(out / f"{name}.npz", **load(src / case / f"{name}.npz"))
        inputs = {"x": np.load(src / case / "x.npy"), **load(src / case / "noise.npz")}
        if (src / case / "labels.npy").exists():
            inputs["labels"] = np.load(src / case / "labels.npy")
        np.savez_compressed(out / "inputs.npz", **inputs)
        for name in TRACES:  # (T[+1], K, B, .) arrays: keep examples [0, N_STORED); (T,) arrays whole
            trace = load(src / case / f"{name}.npz")
            np.savez_compressed(out / f"{name}.npz",
                                **{k: v[:, :, :N_STORED] if v.ndim == 4 else v for k, v in trace.items()})
    np.savez_compressed(HERE / FORWARD[0] / "ami.npz", **load(src / FORWARD[0] / "ami.npz"))

    case, first = src / "case5a_train_binary", src / FORWARD[0]
    assert json.loads((case / "config.json").read_text()) == json.loads((first / "config.json").read_text())
    assert np.array_equal(np.load(case / "x.npy"), np.load(first / "x.npy"))
    for name in ("params", "noise"):
        a, b = load(case / f"{name}.npz"), load(first / f"{name}.npz")
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    out = HERE / "case5a_train_binary"
    out.mkdir(exist_ok=True)
    for name in TRAIN:
        arrays = load(case / f"{name}.npz")
        if name == "float32_grads":  # float32 numbers stored as float64 there: float32 loses nothing
            assert all(np.array_equal(np.float64(np.float32(v)), v) for v in arrays.values())
            arrays = {k: np.float32(v) for k, v in arrays.items()}
        np.savez_compressed(out / f"{name}.npz", **arrays)


if __name__ == "__main__":
    copy(Path(sys.argv[1]))

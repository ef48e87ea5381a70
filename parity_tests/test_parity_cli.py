"""The two command lines on the same files: equal parameter files, traces within tolerance."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tagger_reference.cli import main as reference_cli
from tagger_torch.cli import main as torch_cli

from .cases import CASES, build
from .compare import compare_trace


def run(cli, *args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output + result.stderr
    return result


def load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("binary-B100-deep", "continuous-layer-2obj")],
                         ids=lambda c: c.name)
def test_init_params_files_are_equal(tmp_path, case):
    config = tmp_path / "cfg.json"
    config.write_text(case.config.to_json())
    run(torch_cli, "init-params", "--config", config, "--seed", 17, "--out", tmp_path / "torch.npz")
    run(reference_cli, "init-params", "--config", config, "--seed", 17, "--out", tmp_path / "ref.npz")
    ours, theirs = load(tmp_path / "torch.npz"), load(tmp_path / "ref.npz")
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype == np.float32
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_trace_files_agree(tmp_path, dtype):
    case = next(c for c in CASES if c.name == "continuous-layer-2obj")
    inputs = build(case)
    (tmp_path / "cfg.json").write_text(json.dumps(case.config.to_dict()))
    np.savez(tmp_path / "p.npz", **inputs.params)
    np.save(tmp_path / "x.npy", inputs.x)
    np.savez(tmp_path / "n.npz", m_init=inputs.m_init, corruption=inputs.corruption)
    np.save(tmp_path / "y.npy", inputs.labels)
    common = ["--config", tmp_path / "cfg.json", "--params", tmp_path / "p.npz", "--input", tmp_path / "x.npy",
              "--noise", tmp_path / "n.npz", "--labels", tmp_path / "y.npy"]
    run(reference_cli, "trace", *common, "--out", tmp_path / "ref.npz")
    run(torch_cli, "trace", *common, "--out", tmp_path / "torch.npz", "--dtype", dtype)
    ref, got = load(tmp_path / "ref.npz"), load(tmp_path / "torch.npz")
    compare_trace(case, inputs, ref, {k: np.float64(v) for k, v in got.items()}, "cpu", dtype)

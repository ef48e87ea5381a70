"""Publishing a run as results/NAME/ (`reproduce publish`, tagger_torch.publish), the results README,
`--pretrained NAME` and float16 parameter files everywhere parameters are read."""
import dataclasses
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import SMALL_SHAPES
from tagger_torch.config import load_config
from tagger_torch.data.h5layout import write_fuel_file
from tagger_torch.data.shapes import DESCRIPTION, generate_shapes
from tagger_torch.errors import TaggerError
from tagger_torch.files import PART_OF_KEY, PARTS_KEY, read_npz, save_npz
from tagger_torch.model import Tagger
from tagger_torch.precision import cpu_model
from tagger_torch.float16 import export_float16, rounding_preimage, to_float16
from tagger_torch.inputs import read_params
import tagger_torch.publish as publish_module
from tagger_torch.publish import ROUNDING_DRAWS, PublishSettings, params_digest, publish_run, recompute_validation
from tagger_torch.reproduce.plan import PAPER
from tagger_torch.training.rundir import read_metrics
from tagger_torch.results_readme import BEGIN, END, collect, update_readme_section, write_results_readme
from tiny import TINY, assert_one_line_error, invoke

PNG = b"\x89PNG\r\n\x1a\n"
# the plan's shapes-bn with the tiny config of `trained_run` (1 epoch): its scorings are Table 1's cases
TINY_BN = dataclasses.replace(PAPER.run("shapes-bn"), changes={**TINY, "num_epochs": 1}, epochs=1)
CASES = {case.key: case for case in TINY_BN.scorings}


def plan_file(tmp_path, data):
    """A plan JSON holding TINY_BN, and the data folder of `data` (reproduce's --plan and --data-dir)."""
    folder = os.path.dirname(data["shapes"])
    runs = [{**{f.name: getattr(TINY_BN, f.name) for f in dataclasses.fields(TINY_BN)},
             "cases": [dataclasses.asdict(case) for case in TINY_BN.scorings], "cell": dataclasses.asdict(TINY_BN.cell)}]
    plan = {"data": {key: {"make": ["shapes"], "file": os.path.basename(path)} for key, path in data.items()},
            "runs": runs}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return str(path), folder


def reproduce_publish(tmp_path, data, results, *more):
    """`tagger-torch reproduce publish shapes-bn` with TINY_BN's plan and no run directory."""
    plan, folder = plan_file(tmp_path, data)
    return invoke("reproduce", "publish", "shapes-bn", "--plan", plan, "--runs-dir", tmp_path / "no-runs",
                  "--data-dir", folder, "--results", results, "--readme", "", *more)


def small_shapes(path, n_shapes):
    with h5py.File(path, "w") as f:
        write_fuel_file(f, generate_shapes(**SMALL_SHAPES, n_shapes=n_shapes, progress=False), DESCRIPTION)
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory, small_shapes_h5):
    """The plan's Shapes data sets -> small files, in one folder."""
    root = tmp_path_factory.mktemp("shapes-n")
    shutil.copyfile(small_shapes_h5, root / "s.h5")
    return {"shapes": str(root / "s.h5"), "shapes-2shapes": small_shapes(root / "s2.h5", 2),
            "shapes-4shapes": small_shapes(root / "s4.h5", 4)}


@pytest.fixture(scope="module")
def published(tmp_path_factory, trained_run, data):
    """trained_run (a tiny BatchNorm Tagger, 1 of 1 epochs) published as shapes-bn; (results, log)."""
    results = str(tmp_path_factory.mktemp("results"))
    log = []
    publish_run(trained_run, TINY_BN, results, data, PublishSettings(note="A tiny test run."), echo=log.append)
    return results, log


@pytest.fixture
def results_env(published, monkeypatch):
    monkeypatch.setenv("TAGGER_RESULTS", published[0])
    return published[0]


def test_published_files(published, trained_run, data):
    results, log = published
    folder = os.path.join(results, "shapes-bn")
    expected = {"config.json", "params-fp16.npz", "metrics.jsonl", "curves.png", "figure4.png", "publish.json",
                "fp16_change.json"} | {f"{case}.json" for case in CASES}
    assert expected <= set(os.listdir(folder))
    for png in ("curves.png", "figure4.png"):
        with open(os.path.join(folder, png), "rb") as f:
            assert f.read(8) == PNG
    params = read_npz(os.path.join(folder, "params-fp16.npz"))
    fp32 = read_npz(os.path.join(trained_run, "params.npz"))
    assert params.keys() == fp32.keys() and all(v.dtype == np.float16 for v in params.values())
    assert all(np.array_equal(params[k], fp32[k].astype(np.float16)) for k in fp32)
    assert load_config(os.path.join(folder, "config.json")) == load_config(os.path.join(trained_run, "config.json"))
    with open(os.path.join(folder, "metrics.jsonl")) as a, open(os.path.join(trained_run, "metrics.jsonl")) as b:
        assert a.read() == b.read()
    # every case: the settings, the weights' digest, the data's fingerprint and the command
    for case, spec in CASES.items():
        with open(os.path.join(folder, f"{case}.json")) as f:
            r = json.load(f)
        assert (r["split"], r["iterations"], r["seed"], r["params_digest"]) == (spec.split, 5, 0, params_digest(params))
        assert r["groups"] == (spec.groups or 3) and r["threads"] == 1 and r["params_file"] == "params-fp16.npz"
        assert r["hdf5"] == data[spec.data] and len(r["data_sha256"]) == 64
        assert all(len(r[k]) == 5 and np.all(np.isfinite(r[k])) for k in ("denoising_cost", "ami", "ari"))
        assert r["command"].startswith("OMP_NUM_THREADS=1 tagger-torch evaluate --pretrained shapes-bn ")
        assert r["n_examples"] == 100 and r["batch_size"] == 50
    with open(os.path.join(folder, "fp16_change.json")) as f:
        change = json.load(f)
    with open(os.path.join(folder, "test.json")) as f:
        test = json.load(f)
    assert change["fp16"]["ami"] == test["ami"]
    np.testing.assert_allclose(change["fp16_minus_fp32"]["ami"], np.subtract(test["ami"], change["fp32"]["ami"]))
    assert 0 < change["weights"]["max_abs_change"] < 1e-2 and change["weights"]["n_parameters"] > 1000
    with open(os.path.join(folder, "publish.json")) as f:
        facts = json.load(f)
    assert facts["training"]["epochs"] == facts["training"]["num_epochs"] == 1 and facts["training"]["finished"]
    assert facts["note"] == "A tiny test run." and facts["params_digest"] == test["params_digest"]
    assert facts["params"]["files"] == ["params-fp16.npz"]
    assert facts["params"]["bytes"] == os.path.getsize(os.path.join(folder, "params-fp16.npz"))
    assert facts["command"] == "tagger-torch reproduce publish shapes-bn"
    assert any("ami at T=5" in line for line in log)


def test_publishing_again_keeps_every_file(published, trained_run, data):
    results, _ = published
    folder = os.path.join(results, "shapes-bn")
    before = {name: open(os.path.join(folder, name), "rb").read() for name in os.listdir(folder)}
    log = []
    publish_run(trained_run, TINY_BN, results, data, echo=log.append)  # no note: the first one stays
    after = {name: open(os.path.join(folder, name), "rb").read() for name in os.listdir(folder)}
    assert before == after
    assert sum("unchanged" in line for line in log) == len(CASES) + 2  # the cases, fp16_change, the weights


def test_results_readme(published, tmp_path):
    results, _ = published
    write_results_readme(results)
    with open(os.path.join(results, "README.md")) as f:
        text = f.read()
    assert "Tagger (BatchNorm), paper: AMI | .58 | .73 | .77 | .79 | .79 |" in text
    assert "Tagger (BatchNorm), here (`shapes-bn`): AMI |" in text
    assert "Tagger* (LayerNorm), here (`shapes-ln`) | not published yet" in text
    assert "shapes-bn/figure4.png" in text and "tagger-torch evaluate --pretrained shapes-bn" in text
    assert "Not final" not in text
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{BEGIN}\nold\n{END}\nafter\n")
    update_readme_section(str(readme), collect(results))
    text = readme.read_text()
    assert "old" not in text and "here (`shapes-bn`): AMI" in text and text.endswith(f"{END}\nafter\n")


def test_rounding_preimage_draws_float32_values_that_round_back():
    half = np.concatenate([np.array([0, -0.0, 1, -2, 65504, -65504, 6e-8, 1e-5, 2 ** -14], dtype=np.float16),
                           np.random.default_rng(0).standard_normal(100_000).astype(np.float16)])
    draws = rounding_preimage(half, np.random.default_rng(1))
    assert draws.dtype == np.float32 and np.array_equal(draws.astype(np.float16), half)
    assert np.count_nonzero(draws != half.astype(np.float32)) > 0.99 * half.size
    normal = half[9:]  # no +-65504 (no finite neighbour outwards)
    step = np.abs(np.nextafter(normal, np.float16(np.inf)).astype(np.float32) - normal.astype(np.float32))
    assert np.all(np.abs(draws[9:] - normal.astype(np.float32)) <= step)  # within one float16 step
    assert not np.array_equal(draws, rounding_preimage(half, np.random.default_rng(2)))
    scalar = rounding_preimage(np.array(0.26, dtype=np.float16), np.random.default_rng(3))  # 0-d parameters
    assert scalar.shape == () and scalar.astype(np.float16) == np.float16(0.26)


def test_recompute_validation_reproduces_the_training_log(trained_run, small_shapes_h5):
    config = load_config(os.path.join(trained_run, "config.json"))
    params = read_npz(os.path.join(trained_run, "params.npz"))
    last = read_metrics(os.path.join(trained_run, "metrics.jsonl"))[-1]
    logged = last["valid_denoising_cost"]
    np.testing.assert_allclose(recompute_validation(config, params, small_shapes_h5, last["epoch"]), logged, rtol=1e-5)
    other_noise = recompute_validation(config, params, small_shapes_h5, last["epoch"] + 1)
    assert not np.allclose(other_noise, logged, rtol=1e-5)
    assert last["device"] == "cpu"  # the generator that drew the logged validation's noise
    assert last["processor"] == cpu_model()  # which CPU trained the epoch (`reproduce status`'s rate)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_recompute_validation_of_a_cuda_run_needs_a_gpu(trained_run, small_shapes_h5):
    config = load_config(os.path.join(trained_run, "config.json"))
    params = read_npz(os.path.join(trained_run, "params.npz"))
    with pytest.raises(TaggerError, match="epoch 1's validation noise was drawn on CUDA; recompute it on a machine "
                                          "with a GPU"):
        recompute_validation(config, params, small_shapes_h5, 1, "cuda")


def test_complete_a_published_model_whose_run_is_gone(published, data, tmp_path):
    """`reproduce publish` without the run directory: the missing files from results/NAME's own;
    fp16_change.json without float32 weights."""
    results = tmp_path / "results"
    shutil.copytree(published[0], results)
    folder = results / "shapes-bn"
    for name in ("fp16_change.json", "publish.json", "figure4.png", "single.json"):
        (folder / name).unlink()
    test_bytes = (folder / "test.json").read_bytes()
    result = reproduce_publish(tmp_path, data, results, "--note", "Run gone.")
    assert result.exit_code == 0, result.output
    assert "test.json: unchanged" in result.output and "single.json: single split" in result.output
    assert (folder / "test.json").read_bytes() == test_bytes and (folder / "figure4.png").read_bytes()[:8] == PNG
    change = json.loads((folder / "fp16_change.json").read_text())
    test = json.loads((folder / "test.json").read_text())
    last = read_metrics(str(folder / "metrics.jsonl"))[-1]
    check = change["final_validation"]
    assert change["fp32_params_digest"] is None and check["fp32_logged"] == last["valid_denoising_cost"]
    assert check["epoch"] == 1 and 0 < max(abs(x) for x in check["fp16_minus_fp32"]) < 1e-3
    draws = change["rounding_draws"]
    assert len(draws["draws"]) == ROUNDING_DRAWS and draws["fp16"]["ami"] == test["ami"]
    np.testing.assert_allclose(draws["fp16_minus_draw"][0]["ami"], np.subtract(test["ami"], draws["draws"][0]["ami"]))
    facts = json.loads((folder / "publish.json").read_text())
    assert facts["run"] is None and facts["note"] == "Run gone." and facts["command"].endswith("publish shapes-bn")
    assert facts["training"]["precision"] == last["precision"] and facts["training"]["finished"]
    text = (results / "README.md").read_text()
    assert "no float32 weights" in text and "validation denoising cost after epoch 1" in text
    log = []
    publish_run(None, TINY_BN, str(results), data, echo=log.append)
    assert sum("unchanged" in line for line in log) == len(CASES) + 1  # the cases and fp16_change
    with pytest.raises(TaggerError, match="there is no published shapes-ln to complete"):
        publish_run(None, dataclasses.replace(TINY_BN, name="shapes-ln"), str(results), data)


def test_publish_refuses_unfinished_runs_and_other_configs(trained_run, data, tmp_path):
    with pytest.raises(TaggerError, match="is not a run of the plan's shapes-ln: its config differs in "):
        publish_run(trained_run, PAPER.run("shapes-ln"), str(tmp_path), data)
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "num_epochs": 3}))
    unfinished = dataclasses.replace(TINY_BN, epochs=3)
    with pytest.raises(TaggerError, match="has finished 1 of 3 epochs"):
        publish_run(str(run), unfinished, str(tmp_path / "results"), data)
    result = invoke("reproduce", "publish", "shapes-xx", "--results", tmp_path)
    assert_one_line_error(result, "unknown run 'shapes-xx'")


def test_evaluate_pretrained_reproduces_the_published_scores(results_env, small_shapes_h5, tmp_path):
    with open(os.path.join(results_env, "shapes-bn", "test.json")) as f:
        published = json.load(f)
    out = tmp_path / "test.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = invoke("evaluate", "--pretrained", "shapes-bn", "--hdf5", small_shapes_h5, "--iterations", 5,
                        "--device", "cpu", "--out", out)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    for key in ("denoising_cost", "ami", "ari"):
        assert scores[key] == published[key]
    assert scores["pretrained"] == "shapes-bn" and scores["run"] == os.path.join(results_env, "shapes-bn")


def test_visualize_and_train_from_pretrained(results_env, small_shapes_h5, tmp_path):
    result = invoke("visualize", "--pretrained", "shapes-bn", "--hdf5", small_shapes_h5, "--out", tmp_path / "f.png",
                    "--indices", "1", "--device", "cpu")
    assert result.exit_code == 0, result.output
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", os.path.join(results_env, "shapes-bn", "config.json"),
                    "--load-from", "shapes-bn", "--out", tmp_path / "run", "--max-steps", 1, "--device", "cpu",
                    "--no-compile")
    assert result.exit_code == 0, result.output
    assert "loaded" in result.output and os.path.join(results_env, "shapes-bn") in result.output


@pytest.mark.parametrize("args, message", [
    (["--pretrained", "shapes-xx"], "unknown pretrained model 'shapes-xx' (known: freq20-2mnist-tagger-stage1, "),
    (["--pretrained", "shapes-ln"], "pretrained model 'shapes-ln' is not shipped yet: no config.json"),
    (["--pretrained", "shapes-bn", "--run", "x"], "give --pretrained NAME alone"),
])
def test_pretrained_errors(results_env, small_shapes_h5, args, message):
    for verb in ("evaluate", "visualize"):
        extra = ["--out", "f.png"] if verb == "visualize" else []
        result = invoke(verb, *args, "--hdf5", small_shapes_h5, "--device", "cpu", *extra)
        assert_one_line_error(result, message)


def test_parameter_files_in_parts(trained_run, small_shapes_h5, tmp_path, monkeypatch):
    """A model past the part size ships in parts (params-fp16.npz, params-fp16-2.npz, ...): every reader
    gets the whole model from the first, a later part alone is refused, and a smaller export removes the
    parts it no longer needs."""
    half, _ = to_float16(read_npz(os.path.join(trained_run, "params.npz")))
    part_bytes = sum(v.nbytes for v in half.values()) // 3
    run = tmp_path / "shapes-bn"
    run.mkdir()
    shutil.copy(os.path.join(trained_run, "config.json"), run / "config.json")
    first = str(run / "params-fp16.npz")
    assert export_float16(os.path.join(trained_run, "params.npz"), first, part_bytes)["written"]
    names = {name for name in os.listdir(run) if name.startswith("params-fp16")}
    parts = ["params-fp16.npz"] + [f"params-fp16-{i}.npz" for i in range(2, len(names) + 1)]
    assert len(parts) >= 3 and set(parts) == names
    stored = [read_npz(str(run / name)) for name in parts]
    assert list(stored[0][PARTS_KEY]) == parts[1:] and all(str(p[PART_OF_KEY]) == "params-fp16.npz" for p in stored[1:])
    for part in stored:  # each part within the size, unless one array is larger
        arrays = [v for k, v in part.items() if k not in (PARTS_KEY, PART_OF_KEY)]
        assert sum(v.nbytes for v in arrays) <= part_bytes or len(arrays) == 1
    whole = read_params(first)
    assert whole.keys() == half.keys() and all(np.array_equal(whole[k], half[k]) for k in half)
    with pytest.raises(TaggerError, match="params-fp16-2.npz is one part of params-fp16.npz: read that file"):
        read_params(str(run / "params-fp16-2.npz"))
    before = {name: (run / name).read_bytes() for name in parts}
    assert not export_float16(os.path.join(trained_run, "params.npz"), first, part_bytes)["written"]
    assert {name: (run / name).read_bytes() for name in parts} == before
    # the readers: --run, --params, --pretrained, --load-from
    monkeypatch.setenv("TAGGER_RESULTS", str(tmp_path))
    outputs = []
    for i, args in enumerate((["--run", run], ["--params", first, "--config", run / "config.json"],
                              ["--pretrained", "shapes-bn"])):
        result = invoke("evaluate", *args, "--hdf5", small_shapes_h5, "--iterations", 2, "--device", "cpu",
                        "--out", tmp_path / f"scores{i}.json")
        assert result.exit_code == 0, result.output
        outputs.append(json.loads((tmp_path / f"scores{i}.json").read_text())["denoising_cost"])
    assert outputs[0] == outputs[1] == outputs[2]
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", run / "config.json", "--load-from", "shapes-bn",
                    "--out", tmp_path / "t", "--max-steps", 1, "--device", "cpu", "--no-compile")
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", "--params", run / "params-fp16-2.npz", "--config", run / "config.json",
                    "--hdf5", small_shapes_h5, "--device", "cpu")
    assert_one_line_error(result, "is one part of params-fp16.npz")
    (run / parts[-1]).unlink()
    result = invoke("evaluate", "--run", run, "--hdf5", small_shapes_h5, "--device", "cpu")
    assert_one_line_error(result, f"parameter file not found: {run / parts[-1]}")
    # one part again: the others go, and the first lists none
    assert export_float16(os.path.join(trained_run, "params.npz"), first)["written"]
    assert [name for name in os.listdir(run) if name.startswith("params-fp16")] == ["params-fp16.npz"]
    assert PARTS_KEY not in read_npz(first) and read_params(first).keys() == half.keys()


def test_publishing_in_parts(published, trained_run, data, tmp_path, monkeypatch):
    """publish_run with a part size below the model: publish.json lists the parts and their bytes, and
    the scores are those of the one-file publish (the same float16 values)."""
    half, _ = to_float16(read_npz(os.path.join(trained_run, "params.npz")))
    part_bytes = sum(v.nbytes for v in half.values()) // 2
    monkeypatch.setattr(publish_module, "export_float16", lambda src, out: export_float16(src, out, part_bytes))
    results = str(tmp_path / "results")
    publish_run(trained_run, TINY_BN, results, data, echo=lambda line: None)
    folder, one_file = os.path.join(results, "shapes-bn"), os.path.join(published[0], "shapes-bn")
    with open(os.path.join(folder, "publish.json")) as f:
        params = json.load(f)["params"]
    assert params["files"][0] == "params-fp16.npz" and len(params["files"]) >= 2
    assert params["bytes"] == sum(os.path.getsize(os.path.join(folder, name)) for name in params["files"])
    for case in CASES:
        with open(os.path.join(folder, f"{case}.json")) as a, open(os.path.join(one_file, f"{case}.json")) as b:
            parts, whole = json.load(a), json.load(b)
        assert all(parts[key] == whole[key] for key in ("denoising_cost", "ami", "params_digest"))


def test_float16_parameter_files_load_everywhere(trained_run, small_shapes_h5, tmp_path):
    """--params/--config, --run, --load-from and the NumPy reference read float16 files; the model
    holds the float16 values exactly, in its own dtype."""
    config = load_config(os.path.join(trained_run, "config.json"))
    half, facts = to_float16(read_npz(os.path.join(trained_run, "params.npz")))
    assert facts["n_parameters"] == sum(v.size for v in half.values())
    run = tmp_path / "run16"
    run.mkdir()
    shutil.copy(os.path.join(trained_run, "config.json"), run / "config.json")
    save_npz(str(run / "params-fp16.npz"), half, dtype=None)
    for dtype in (torch.float32, torch.float64):
        model = Tagger(config, dtype=dtype)
        model.load_params(read_npz(str(run / "params-fp16.npz")))
        for name, value in half.items():
            assert model._parameters[name].dtype == dtype
            assert np.array_equal(model._parameters[name].detach().numpy(), value.astype(np.float64))
    for args in (["--run", run], ["--params", run / "params-fp16.npz", "--config", run / "config.json"]):
        result = invoke("evaluate", *args, "--hdf5", small_shapes_h5, "--iterations", 2, "--device", "cpu")
        assert result.exit_code == 0, result.output
    result = invoke("train", "--hdf5", small_shapes_h5, "--config", run / "config.json", "--load-from",
                    run / "params-fp16.npz", "--out", tmp_path / "t", "--max-steps", 1, "--device", "cpu", "--no-compile")
    assert result.exit_code == 0, result.output
    from tagger_reference.cli import main as reference_main
    x = read_npz(str(run / "params-fp16.npz"))  # any B = 2 input and noise
    np.save(tmp_path / "x.npy", np.random.RandomState(0).randint(0, 2, (2, 400)).astype(np.float32))
    np.savez(tmp_path / "noise.npz", m_init=np.random.RandomState(1).randn(config.n_groups, 2, 400))
    outs = []
    for name, params in (("p16", tmp_path / "p16.npz"), ("p32", tmp_path / "p32.npz")):
        save_npz(str(params), x, dtype=np.float16 if name == "p16" else np.float32)
        trace = tmp_path / f"{name}-trace.npz"
        result = CliRunner().invoke(reference_main, ["trace", "--config", str(run / "config.json"), "--params", str(params),
                                                     "--input", str(tmp_path / "x.npy"), "--noise",
                                                     str(tmp_path / "noise.npz"), "--out", str(trace)])
        assert result.exit_code == 0, result.output
        outs.append(read_npz(str(trace)))
    assert all(np.array_equal(outs[0][k], outs[1][k]) for k in outs[0])  # float16 and its float32 copy: the same

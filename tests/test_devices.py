"""Device choice on a machine without the asked-for GPU: one line `Error: ...` and exit 2, never a
traceback (README, "Commands"). torch's view of CUDA is faked, so these run on any machine."""
import pytest
import torch

from tagger_torch import distributed
from tagger_torch.errors import TaggerError
from tagger_torch.precision import resolve_device
from tiny import assert_one_line_error, invoke


@pytest.fixture
def two_gpus(monkeypatch):
    """torch reports two CUDA devices (nothing touches them: every check fails before)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize("device, message", [
    ("cuda:2", "--device cuda:2: torch sees 2 CUDA devices (cuda:0..cuda:1)"),
    ("cuda:7", "torch sees 2 CUDA devices"),
    ("mps", "unknown device 'mps' (use cpu, cuda or cuda:N)"),
    ("gpu", "unknown device 'gpu'"),
])
def test_a_device_torch_cannot_use_is_refused(two_gpus, device, message):
    with pytest.raises(TaggerError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        resolve_device(device)


def test_the_devices_that_exist_resolve(two_gpus):
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_a_missing_gpu_index_is_one_line_on_the_command_line(two_gpus):
    assert_one_line_error(invoke("bench", "--device", "cuda:5", "--steps", 1), "torch sees 2 CUDA devices")


def test_no_cuda_at_all_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert_one_line_error(invoke("bench", "--device", "cuda:0", "--steps", 1),
                          "--device cuda:0 was asked for, but torch sees no CUDA device")


def test_torchrun_with_more_ranks_than_gpus_is_one_line(two_gpus, monkeypatch, small_shapes_h5, tmp_path):
    """Local rank 2 of a job on a machine with 2 GPUs: refused before torch.cuda.set_device."""
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: pytest.fail("set_device was called"))
    with pytest.raises(TaggerError, match="more processes on this machine than it has GPUs.*--nproc-per-node 2"):
        distributed.setup(torch.device("cuda"))
    result = invoke("train", "--hdf5", small_shapes_h5, "--out", tmp_path / "run", "--device", "cuda")
    assert_one_line_error(result, "local rank 2, 2 CUDA devices")
    assert not (tmp_path / "run").exists()

"""Loaded by pytest before any test module imports torch: the tests' OpenMP threads sleep instead
of spinning while they wait, as under the `tagger-torch` command line (tagger_torch/cli.py), so that
the suite keeps its speed on a CPU shared with other jobs (docs/speed.md, "Shared CPUs"); and, at
the end of a run without a GPU, one line with the number of CUDA cases skipped."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_terminal_summary(terminalreporter):
    """Say plainly, at the end of the run, when the CUDA tests (marker `cuda`) were skipped and why."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "cuda" in r.keywords]
    if not skipped:
        return
    import torch  # here, after the environment above is set

    if not torch.cuda.is_available():
        parity = sum(r.nodeid.startswith("parity_tests/") for r in skipped)
        terminalreporter.write_line(
            f"cuda: {len(skipped)} CUDA cases skipped ({parity} of the parity suite, {len(skipped) - parity} of "
            "tests/): no CUDA device (torch.cuda.is_available() is False). Run `make parity` and "
            "scripts/device_check.sh on a machine with a GPU to check them.")

"""Say plainly, at the end of the run, when the CUDA parity cases were skipped and why."""
import torch


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "cuda" in r.keywords]
    if skipped and not torch.cuda.is_available():
        terminalreporter.write_line(
            f"parity: {len(skipped)} CUDA cases skipped: no CUDA device (torch.cuda.is_available() is False). "
            "Run `make parity` on a machine with a GPU to check them.")

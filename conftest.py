"""Loaded by pytest before any test module imports torch: the tests' OpenMP threads sleep instead
of spinning while they wait, as under the `tagger-torch` command line (tagger_torch/cli.py), so that
the suite keeps its speed on a CPU shared with other jobs (docs/speed.md, "Shared CPUs")."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

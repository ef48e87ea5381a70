"""memory.keep_freed_memory: a buffer freed and allocated again is not faulted in again (glibc)."""
import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# a 64 MB block malloc'ed, written and freed 20 times: the minor page faults of the last 19 rounds
PROBE = """
import ctypes, json, resource, sys
from tagger_torch.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]

def round_trip():
    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    libc.free(block)

round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    round_trip()
print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def probe(mode, **env):
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "TAGGER_KEEP_FREED_MEMORY"))}
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          env={**environment, **env}, check=True)
    return json.loads(done.stdout)


def test_freed_memory_is_reused_without_faults():
    pages = 19 * (64 << 20) // 4096  # each round's buffer faulted in again, as glibc's defaults do
    default, kept = probe("default"), probe("keep")
    assert default["faults"] > pages // 2, default
    assert kept["kept"] is True and kept["faults"] < pages // 100, kept


def test_the_users_own_malloc_settings_are_left_alone():
    assert probe("keep", MALLOC_TRIM_THRESHOLD_="131072")["kept"] is False
    assert probe("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")["kept"] is False
    assert probe("keep", GLIBC_TUNABLES="glibc.cpu.hwcaps=-AVX512F")["kept"] is True
    assert probe("keep", TAGGER_KEEP_FREED_MEMORY="0")["kept"] is False
    assert probe("keep", TAGGER_KEEP_FREED_MEMORY="1")["kept"] is True


def test_the_command_line_keeps_freed_memory(monkeypatch):
    from tagger_torch import cli
    from tiny import invoke

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1))
    assert invoke("data-summary", "--help").exit_code == 0 and calls == [1]

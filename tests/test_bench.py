"""The benchmark scripts start: each reads its own imports (the library's, the tests' launcher and fixtures it
borrows) before its options, so ``--help`` answering proves a moved name has not broken one. Their figures are
measured by hand and reported in docs/benchmarks.md; only their starting is tested here."""
import glob
import os
import subprocess
import sys

import pytest

from conftest import ROOT

# Run by bench_real_time.py with another interpreter, one that has the `fer` package this project does not
# install: it has no options to ask for, and its import of `fer` cannot succeed here.
OTHER_INTERPRETER = {"fer_baseline.py"}

SCRIPTS = sorted(os.path.basename(path) for path in glob.glob(os.path.join(ROOT, "bench", "*.py"))
                 if os.path.basename(path) not in OTHER_INTERPRETER | {"__init__.py"})


def test_every_benchmark_is_checked():
    assert len(SCRIPTS) >= 10 and "bench_readout.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_benchmark_starts_and_answers_help(script, tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", script), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:"), done.stdout[:500]
    assert "Traceback" not in done.stderr

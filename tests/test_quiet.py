"""Native start-up notes kept off stderr, everything else shown as it comes: a stand-in ``tensorflow`` package
writes what TensorFlow 2.21 and LiteRT print (and then errs, aborts, crashes or hangs), so the filter is tested
on every CPU, whether or not the real TensorFlow prints anything on it; then the real thing, and who installs it."""
import ast
import io
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ROOT

from utils.quiet import forward, is_chatter

# What TensorFlow 2.21 prints on an AVX512-BF16 CPU as its libraries load, and LiteRT as an interpreter is made.
ABSL_BEFORE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = ("I0000 00:00:1796354614.649650    9000 port.cc:153] oneDNN custom operations are on. You may see "
          "slightly different numerical results due to floating-point round-off errors.\n")
XNNPACK = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
AN_ERROR = "E0000 00:00:1796354614.649650    9000 op_kernel.cc:1830] a real error stays\n"
A_FATAL = "F0000 00:00:1796354614.649650    9000 cpu_feature_guard.cc:95] Check failed: the CPU lacks AVX\n"
NOTES = ABSL_BEFORE_INIT + ONEDNN


def test_only_the_known_notes_are_removed():
    text = NOTES + "a line of the tool's own\n" + XNNPACK + AN_ERROR + ONEDNN + "no line end"
    out = io.BytesIO()
    forward(io.BytesIO(text.encode()), out)
    assert out.getvalue().decode() == "a line of the tool's own\n" + AN_ERROR + "no line end"
    # Other Abseil notes and warnings are not known chatter: they reach the user.
    for kept in ("W0000 00:00:12.5 42 cpu_feature_guard.cc:227] a warning", "I0000 00:00:1.5 1 other.cc:1] a note",
                 "oneDNN custom operations are on. (not Abseil's line)", A_FATAL.strip()):
        assert not is_chatter(kept), kept
    assert all(is_chatter(line) for line in (NOTES + XNNPACK).splitlines())


def stand_in(tmp_path, body):
    """A package called ``tensorflow`` under ``tmp_path`` whose import writes the start-up notes and runs ``body``."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(
        f"import os\nos.write(2, {NOTES.encode()!r})\n" + textwrap.dedent(body))


def python(code, tmp_path, **popen):
    """``code`` in a new interpreter whose ``tensorflow`` is the stand-in in ``tmp_path``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    command = [sys.executable, "-c", textwrap.dedent(code)]
    if popen:
        return subprocess.Popen(command, env=env, cwd=tmp_path, **popen)
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


FRONT_END = """
    import sys
    print("before", file=sys.stderr, flush=True)
    from utils.cli import run_cli

    def main(argv):
        import tensorflow
        print("after", file=sys.stderr, flush=True)
        import os
        os.write(2, b"I0000 00:00:1.5 1 later.cc:1] a note after the first import is not held back\\n")

    run_cli(main)
    """


def test_an_error_during_the_import_is_shown_and_the_rest_goes_on(tmp_path):
    """Through run_cli, as a front end imports TensorFlow: the error in order with the rest, the notes gone."""
    stand_in(tmp_path, f"os.write(2, {AN_ERROR.encode()!r})\nos.write(2, {ONEDNN.encode()!r})\n")
    result = python(FRONT_END, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("before\n" + AN_ERROR + "after\n"
                             "I0000 00:00:1.5 1 later.cc:1] a note after the first import is not held back\n")


@pytest.mark.parametrize("crash, status", [
    ("os.abort()", -signal.SIGABRT),
    ("import ctypes\nctypes.string_at(0)", -signal.SIGSEGV),     # reads address 0: a segmentation fault
])
def test_a_crash_during_the_import_still_shows_its_last_words(tmp_path, crash, status):
    stand_in(tmp_path, f"os.write(2, {A_FATAL.encode()!r})\n{crash}\n")
    result = python(FRONT_END, tmp_path)
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()   # Python's own words on the crash may follow, when faulthandler is on
    assert lines[:2] == ["before", A_FATAL.strip()] and not any(is_chatter(line) for line in lines), result.stderr


def test_a_hanging_import_shows_what_it_printed_while_it_hangs(tmp_path):
    stand_in(tmp_path, f"os.write(2, {AN_ERROR.encode()!r})\nimport time\ntime.sleep(600)\n")
    process = python(FRONT_END, tmp_path, stderr=subprocess.PIPE)
    try:
        lines, deadline = b"", time.monotonic() + 60
        while lines.count(b"\n") < 2 and time.monotonic() < deadline:
            if select.select([process.stderr], [], [], 1)[0]:
                lines += os.read(process.stderr.fileno(), 4096)
        assert process.poll() is None                     # still importing
        assert lines.decode() == "before\n" + AN_ERROR
    finally:
        process.kill()
        process.wait()
        process.stderr.close()


def test_a_library_that_keeps_a_copy_of_stderr_neither_hangs_the_import_nor_loses_its_lines(tmp_path):
    """Native code may duplicate file descriptor 2 while it loads: the pipe then stays open after the import,
    the import goes on (after FORWARDER_DRAIN_SECONDS) and what that copy carries later is still filtered."""
    stand_in(tmp_path, "kept = os.dup(2)\n")
    result = python(f"""
        import os, sys, time
        from utils import quiet
        quiet.install()
        quiet.FORWARDER_DRAIN_SECONDS = 0.5
        start = time.monotonic()
        import tensorflow
        print("imported", file=sys.stderr, flush=True)
        os.write(tensorflow.kept, {(ONEDNN + AN_ERROR).encode()!r})
        assert time.monotonic() - start < 30
        """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "imported\n" + AN_ERROR


def test_a_failing_import_still_shows_its_traceback(tmp_path):
    stand_in(tmp_path, "raise ImportError('the library is broken')\n")
    result = python("""
        from utils import quiet
        quiet.install()
        import tensorflow
        """, tmp_path)
    assert result.returncode == 1
    assert "port.cc" not in result.stderr and "InitializeLog" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "ImportError: the library is broken"


def test_a_note_printed_once_a_process_is_filtered_the_first_time_only(tmp_path):
    result = python(f"""
        import os
        from utils import quiet
        quiet.install()
        for _ in range(2):
            with quiet.filtered_the_first_time("interpreter"):
                os.write(2, {XNNPACK.encode()!r})
        """, tmp_path)
    assert result.returncode == 0 and result.stderr == XNNPACK, result.stderr


def test_importing_the_library_changes_nothing_in_the_process(tmp_path):
    """Every module of utils/ imported (the real TensorFlow with it): no import hook, no environment variable,
    no logging level of ours; TensorFlow's own notes then show, as they do for any program that imports it."""
    result = python("""
        import importlib, os, pkgutil, sys
        from absl import logging
        verbosity = logging.get_verbosity()
        import utils
        for module in pkgutil.walk_packages(utils.__path__, "utils."):
            importlib.import_module(module.name)
        from utils.quiet import QuietImport
        assert "keras" in sys.modules
        assert not any(isinstance(hook, QuietImport) for hook in sys.meta_path)
        assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
        assert logging.get_verbosity() == verbosity
        """, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_real_libraries_start_without_a_word_once_installed(tmp_path):
    """TensorFlow, Keras and a LiteRT interpreter on this machine's CPU: without the filter (TensorFlow's own
    logging at level 2, as install sets it) they print only notes it knows (LiteRT's on every CPU, TensorFlow's
    where oneDNN's custom operations are on), with it nothing."""
    start = """
        import numpy as np
        {install}
        import keras
        from utils.faces import detect
        detect.find_faces(np.zeros((64, 64, 3), np.uint8), "fast", "blazeface")
        """
    raw = python(start.format(install="import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'"), tmp_path)
    assert raw.returncode == 0, raw.stderr
    assert XNNPACK in raw.stderr and all(is_chatter(line) for line in raw.stderr.splitlines()), raw.stderr
    quiet = python(start.format(install="from utils import quiet; quiet.install()"), tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


FRONT_ENDS = ("app.py", "index.py", "real_time.py", "train.py", "evaluate.py", "visualize.py",
              "scripts/export_browser.py", "scripts/make_site.py", "scripts/measure_canonical_face.py",
              "scripts/screenshots.py", "scripts/measure_bfloat16.py")


@pytest.mark.parametrize("script", FRONT_ENDS)
def test_each_front_end_runs_through_run_cli_and_imports_no_tensorflow_before(script):
    """``if __name__ == "__main__": run_cli(main)``, and importing the script leaves TensorFlow unloaded,
    so the filter run_cli installs is in place before TensorFlow's first import."""
    tree = ast.parse(open(os.path.join(ROOT, script)).read())
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"]
    assert "run_cli(main)" in [ast.unparse(statement) for statement in block.body], script
    module = os.path.splitext(os.path.basename(script))[0]
    imported = subprocess.run([sys.executable, "-c", f"import sys; sys.path[:0] = [{ROOT!r}, {os.path.dirname(os.path.join(ROOT, script))!r}]; "
                               f"import {module}; print('tensorflow' in sys.modules)"],
                              capture_output=True, text=True, timeout=120)
    assert imported.stdout.strip() == "False", imported.stderr


def test_the_server_and_the_tests_install_it_too():
    for path in ("gunicorn.conf.py", "tests/conftest.py"):
        calls = [ast.unparse(node) for node in ast.walk(ast.parse(open(os.path.join(ROOT, path)).read()))
                 if isinstance(node, ast.Call)]
        assert "quiet.install()" in calls, path

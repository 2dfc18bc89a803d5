"""Native start-up chatter kept off stderr, on every CPU: the lines TensorFlow 2.21 and LiteRT print are
written here by a stand-in package, so the filter is tested on machines whose TensorFlow stays silent too."""
import os
import subprocess
import sys
import textwrap

from conftest import ROOT

from utils.quiet import without_chatter

# What TensorFlow 2.21 prints on an AVX512-BF16 CPU as its libraries load, and LiteRT as an interpreter is made.
ABSL_BEFORE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = ("I0000 00:00:1796354614.649650    9000 port.cc:153] oneDNN custom operations are on. You may see "
          "slightly different numerical results due to floating-point round-off errors.\n")
XNNPACK = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
AN_ERROR = "E0000 00:00:1796354614.649650    9000 op_kernel.cc:1830] a real error stays\n"


def test_known_chatter_is_removed_and_everything_else_kept():
    text = ABSL_BEFORE_INIT + ONEDNN + "a line of the tool's own\n" + XNNPACK + AN_ERROR + ONEDNN
    assert without_chatter(text) == "a line of the tool's own\n" + AN_ERROR
    # A warning from absl is chatter too; a line that merely mentions oneDNN is not.
    assert without_chatter("W0000 00:00:12.5 42 cpu_feature_guard.cc:227] note\n") == ""
    assert without_chatter("oneDNN custom operations are on\n") == "oneDNN custom operations are on\n"


def run_python(code, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)


def test_the_first_import_of_a_noisy_package_is_filtered_wherever_it_happens(tmp_path):
    """A package that writes chatter and an error to file descriptor 2 as it loads, as TensorFlow does,
    imported indirectly (as Keras imports TensorFlow): only the error reaches stderr, in order with the rest."""
    (tmp_path / "noisy").mkdir()
    (tmp_path / "noisy" / "__init__.py").write_text(
        f"import os\nos.write(2, {(ABSL_BEFORE_INIT + ONEDNN).encode()!r})\n"
        f"os.write(2, {AN_ERROR.encode()!r})\nos.write(2, {ONEDNN.encode()!r})\n")
    (tmp_path / "front.py").write_text("import noisy\n")
    result = run_python("""
        import sys
        print("before", file=sys.stderr, flush=True)
        from utils.quiet import quiet_imports
        quiet_imports("noisy")
        import front
        print("after", file=sys.stderr, flush=True)
        import os
        os.write(2, b"I0000 00:00:1.5 1 later.cc:1] a note after the first import is not held back\\n")
        """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("before\n" + AN_ERROR + "after\n"
                             "I0000 00:00:1.5 1 later.cc:1] a note after the first import is not held back\n")


def test_a_failing_import_still_shows_its_error(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "__init__.py").write_text(
        f"import os\nos.write(2, {ONEDNN.encode()!r})\nraise ImportError('the library is broken')\n")
    result = run_python("""
        from utils.quiet import quiet_imports
        quiet_imports("broken")
        import broken
        """, tmp_path)
    assert result.returncode == 1
    assert "port.cc" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "ImportError: the library is broken"


def test_importing_utils_then_keras_prints_nothing(tmp_path):
    """The real thing, on this machine's CPU: TensorFlow and a LiteRT interpreter start without a word."""
    result = run_python("""
        import numpy as np
        import utils
        import keras
        from utils.faces import detect
        detect.find_faces(np.zeros((64, 64, 3), np.uint8), "fast", "blazeface")
        """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

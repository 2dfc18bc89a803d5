"""The browser and desktop tests need Debian's Chromium and Xvfb: a developer's machine without them skips those
tests with the reason, while CI (the ``CI`` environment variable, which .ci/run sets) fails them, since they are
the only guard of the in-browser engine and the desktop window."""
import os

import pytest

from conftest import missing, ROOT


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_a_missing_package_fails_in_ci_with_its_reason(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"^/usr/bin/chromium is missing \(.*\); CI runs every test$"):
        missing("/usr/bin/chromium is missing (sudo apt-get install chromium)")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_package_skips_elsewhere_with_its_reason(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match=r"^no display: DISPLAY is unset"):
        missing("no display: DISPLAY is unset and Xvfb is not installed")


def test_ci_sets_ci_before_running_the_tests():
    lines = open(os.path.join(ROOT, ".ci", "run")).read().splitlines()
    assert lines.index('export CI="${CI:-true}"') < lines.index("make test")

"""`make site` replaces only a folder it wrote; `make clean` deletes only such a folder. (The site it writes is
run in Chromium by tests/test_browser_engine.py.)"""
import os
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import make_site  # noqa: E402


def test_a_folder_make_site_did_not_write_is_refused_in_one_line_and_left_alone(tmp_path, capsys):
    folder = tmp_path / "Documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    assert make_site.main(["--out", str(folder)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"make_site.py: {folder} exists and was not written by make site") and error.count("\n") == 1
    assert "REPLACE=1" in error and "--replace" in error
    assert (folder / "thesis.txt").read_text() == "years of work"


@pytest.mark.parametrize("kind", ["file", "link to a folder"])
def test_a_file_or_a_link_in_the_way_is_refused(tmp_path, kind):
    target = tmp_path / "site"
    if kind == "file":
        target.write_text("notes")
    else:
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(make_site.FolderTaken):
        make_site.check_out(str(target))
    make_site.check_out(str(target), replace=True)   # asked for: allowed
    make_site.remove(str(target))
    assert not os.path.lexists(target) and (kind == "file" or (tmp_path / "elsewhere").is_dir())


def test_a_missing_or_empty_folder_or_one_make_site_wrote_is_used(tmp_path):
    make_site.check_out(str(tmp_path / "new"))
    (tmp_path / "empty").mkdir()
    make_site.check_out(str(tmp_path / "empty"))
    written = tmp_path / "written"
    written.mkdir()
    (written / "index.html").write_text("an old site")
    (written / make_site.MARK).write_text("")
    make_site.check_out(str(written))


def test_make_clean_deletes_the_site_folder_only_when_make_site_wrote_it(tmp_path):
    """The recipe's own line, as make prints it, run on a folder of someone else's and on a written site."""
    for name, written in (("theirs", False), ("ours", True)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "index.html").write_text("a page")
        if written:
            (folder / make_site.MARK).write_text("")
        recipe = subprocess.run(["make", "-n", "-s", "clean", f"SITE={folder}"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.splitlines()
        lines = [command for command in recipe if str(folder) in command]
        assert len(lines) == 1 and make_site.MARK in lines[0]
        subprocess.run(["sh", "-c", lines[0]], check=True)
        assert folder.exists() != written, name

"""The README stays short (details live in docs/), and every link in it and in docs/ leads somewhere."""
import glob
import os
import re

import pytest

from conftest import ROOT

README_MAX_LINES = 300
PAGES = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "dataset", "README.md"),
         *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path):
    """The anchors GitHub makes of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    with open(path) as handle:
        headings = [line.lstrip("#").strip() for line in handle if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_the_readme_is_at_most_300_lines():
    with open(os.path.join(ROOT, "README.md")) as handle:
        assert len(handle.read().splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_every_local_link_leads_to_a_file_and_heading_that_exist(page):
    with open(page) as handle:
        targets = LINK.findall(handle.read())
    broken = []
    for target in targets:
        if re.match(r"[a-z]+:", target):
            continue                      # https:, mailto: ...
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(resolved) or (anchor and resolved.endswith(".md") and anchor not in anchors(resolved)):
            broken.append(target)
    assert not broken

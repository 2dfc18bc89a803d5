"""The library's layout: each part of ``utils/`` imports only the parts beneath it, no module imports
itself back through others, and no module grows past what a newcomer reads in one sitting."""
import ast
import pathlib

import pytest

UTILS = pathlib.Path(__file__).resolve().parent.parent / "utils"
# From the bottom up; parts on one floor do not import each other. The top-level modules
# (defaults, cpu, cli, files, quiet) are the ground every part stands on.
FLOORS = (("media",), ("faces",), ("model",), ("train",), ("explain", "live"), ("serving",))
MAX_LINES = 400


def floor_of(part):
    return next((number for number, parts in enumerate(FLOORS, 1) if part in parts), 0)


def module_name(path):
    parts = path.relative_to(UTILS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module):
    """``utils.faces.detect`` -> ``faces``; a top-level module (``utils.files``) -> ``""``."""
    bits = module.split(".")
    return bits[1] if len(bits) > 2 or (len(bits) == 2 and (UTILS / bits[1]).is_dir()) else ""


def imported(path):
    """Every ``utils`` module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "utils":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                is_module = (UTILS.parent / child.replace(".", "/")).with_suffix(".py").exists() or \
                    (UTILS.parent / child.replace(".", "/")).is_dir()
                found.add(child if is_module else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "utils")
    return found


MODULES = {module_name(path): path for path in sorted(UTILS.rglob("*.py"))}
GRAPH = {module: {target for target in imported(path) if target in MODULES and target != module}
         for module, path in MODULES.items()}


@pytest.mark.parametrize("module", [m for m in MODULES if part_of(m)])
def test_a_part_imports_only_the_parts_beneath_it(module):
    part = part_of(module)
    upward = [target for target in GRAPH[module]
              if part_of(target) and part_of(target) != part and floor_of(part_of(target)) >= floor_of(part)]
    assert not upward, f"{module} ({part}, floor {floor_of(part)}) imports {upward}"


def test_the_top_level_modules_import_no_part():
    for module in (m for m in MODULES if not part_of(m) and m != "utils"):
        assert not [t for t in GRAPH[module] if part_of(t)], module


def test_no_module_imports_itself_back():
    def reaches(start, goal, seen):
        for target in GRAPH[start] - seen:
            seen.add(target)
            if target == goal or reaches(target, goal, seen):
                return True
        return False
    circles = [module for module in MODULES if reaches(module, module, set())]
    assert not circles, f"import circles through {circles}"


def test_no_module_is_longer_than_a_sitting():
    long = {module: n for module, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


@pytest.mark.parametrize("part", sorted(p.name for p in UTILS.iterdir() if p.is_dir() and p.name != "__pycache__"))
def test_each_part_says_what_it_owns_and_what_it_may_import(part):
    doc = ast.get_docstring(ast.parse((UTILS / part / "__init__.py").read_text()))
    assert doc and "Owns:" in doc and "May import:" in doc
    assert floor_of(part), f"utils/{part} is on no floor of FLOORS"


def test_the_reader_sees_imports_at_the_top_and_inside_functions():
    assert {"utils.faces.blazeface", "utils.faces.haar", "utils.faces.face"} <= GRAPH["utils.faces.detect"]
    assert "utils.media.colour" in GRAPH["utils.faces.align"]

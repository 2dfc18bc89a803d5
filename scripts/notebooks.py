"""The notebooks in notebooks/: run them with chosen parameters, render them as HTML, keep them clean.

    python scripts/notebooks.py html [NAME ...] [--out reports/notebooks]   # run with the defaults, write NAME.html
    python scripts/notebooks.py clear [NOTEBOOK ...]              # remove outputs before committing
    python scripts/notebooks.py check                             # exit 1 if a notebook holds outputs

Each notebook has one code cell tagged ``parameters`` (papermill's convention): a run that
changes them gets a cell tagged ``injected-parameters`` right after it, assigning the new
values, so the notebook's own defaults stay as they are. The tests run every notebook this way
on a small data set; ``html`` runs them with their defaults (FER2013 in dataset/fer2013).
"""
import argparse
import copy
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
HTML_OUT = os.path.join(ROOT, "reports", "notebooks")
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
KERNEL = "python3"        # the kernel of the Python running this script (ipykernel's own)
CELL_TIMEOUT = 1800       # seconds one cell may take (the longest trains for a few minutes)


def notebook_paths(folder=NOTEBOOKS):
    """The notebooks in reading order (their names start with their part's number)."""
    return sorted(glob.glob(os.path.join(folder, "*.ipynb")))


def read(path):
    import nbformat
    return nbformat.read(path, as_version=4)


def parameters_index(notebook):
    """The index of the cell tagged ``parameters``; a ValueError when there is none."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return index
    raise ValueError("the notebook has no code cell tagged 'parameters'")


def parameter_names(notebook):
    """The names the parameters cell assigns, in order."""
    import ast
    tree = ast.parse(notebook.cells[parameters_index(notebook)].source)
    return [target.id for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)]


def with_parameters(notebook, values):
    """A copy of ``notebook`` with ``values`` (name -> Python literal) assigned after its parameters cell.

    A name the parameters cell does not have is refused: a misspelt parameter would
    otherwise be ignored silently.
    """
    import nbformat
    unknown = sorted(set(values) - set(parameter_names(notebook)))
    if unknown:
        raise ValueError(f"unknown parameter {', '.join(unknown)} (parameters: {', '.join(parameter_names(notebook))})")
    changed = copy.deepcopy(notebook)
    if values:
        source = "# Injected parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in values.items())
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
        changed.cells.insert(parameters_index(notebook) + 1, cell)
    return changed


def execute(path, folder, parameters=None, timeout=CELL_TIMEOUT):
    """Run the notebook at ``path`` top to bottom with its working folder ``folder``; the executed notebook.

    A cell that raises stops the run with nbclient's CellExecutionError, which holds the traceback.
    """
    from nbclient import NotebookClient
    notebook = with_parameters(read(path), parameters or {})
    NotebookClient(notebook, timeout=timeout, kernel_name=KERNEL,
                   resources={"metadata": {"path": folder}}).execute()
    return notebook


def cells_with_outputs(notebook):
    """Indices of the code cells that hold outputs or an execution count."""
    return [index for index, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]


def clear(notebook):
    """Remove every output and execution count (and Jupyter's per-run cell metadata); True if anything changed."""
    changed = False
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for key in ("collapsed", "scrolled", "execution"):
            changed |= cell.metadata.pop(key, None) is not None
        changed |= bool(cell.outputs) or cell.execution_count is not None
        cell.outputs, cell.execution_count = [], None
    return changed


def without_stderr(notebook):
    """The notebook without what its cells wrote on stderr (TensorFlow's start-up notes, progress bars)."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs
                            if not (output.output_type == "stream" and output.name == "stderr")]
    return notebook


def render_html(out, names=()):
    """Run the notebooks called ``names`` (all when empty) with their defaults, in the working folder
    notebooks/, and write each as ``out``/NAME.html, without its stderr output."""
    from nbconvert import HTMLExporter
    exporter = HTMLExporter()
    paths = notebook_paths()
    known = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"error: no notebook {', '.join(unknown)} (notebooks: {', '.join(known)})")
    os.makedirs(out, exist_ok=True)
    total = 0.0
    for path, name in zip(paths, known):
        if names and name not in names:
            continue
        start = time.monotonic()
        notebook = execute(path, NOTEBOOKS)
        seconds = time.monotonic() - start
        total += seconds
        body, _ = exporter.from_notebook_node(without_stderr(notebook), resources={"metadata": {"name": name}})
        with open(os.path.join(out, name + ".html"), "w", encoding="utf-8") as handle:
            handle.write(body)
        print(f"{name}: {seconds:.0f} s", flush=True)
    print(f"{len(names) or len(paths)} notebooks: {total / 60:.1f} minutes; HTML in {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    html = commands.add_parser("html", help="run every notebook with its defaults and write it as HTML")
    html.add_argument("names", nargs="*", metavar="NAME", help="only these notebooks (e.g. 05_inside_the_shipped_model)")
    html.add_argument("--out", default=HTML_OUT, help=f"where the HTML goes (default {os.path.relpath(HTML_OUT, ROOT)})")
    cleared = commands.add_parser("clear", help="remove the outputs of the notebooks (default: all of them)")
    cleared.add_argument("paths", nargs="*", metavar="NOTEBOOK")
    commands.add_parser("check", help="exit 1 if a notebook holds outputs")
    args = parser.parse_args(argv)
    if args.command == "html":
        render_html(args.out, args.names)
    elif args.command == "clear":
        import nbformat
        for path in args.paths or notebook_paths():
            notebook = read(path)
            if clear(notebook):
                nbformat.write(notebook, path)
                print(f"cleared {os.path.relpath(path, ROOT)}")
    else:
        dirty = [os.path.relpath(path, ROOT) for path in notebook_paths() if cells_with_outputs(read(path))]
        if dirty:
            print(f"outputs in {', '.join(dirty)}: run python scripts/notebooks.py clear", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

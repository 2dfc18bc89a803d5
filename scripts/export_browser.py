"""Export the emotion models for the in-browser engine (LiteRT.js), when their export is missing or stale.

    python scripts/export_browser.py [--models models] [--out build/browser] [--force]

``make run`` runs it first: a model trained or replaced since its export is exported again
(seconds per model); an export that is up to date is left alone.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils import defaults  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export the emotion models for the browser engine (LiteRT.js).")
    parser.add_argument("--models", default=defaults.project_path(defaults.MODELS_DIR),
                        help="folder of NAME.h5 + NAME.json models (default: %(default)s)")
    parser.add_argument("--out", default=defaults.project_path(defaults.BROWSER_DIR),
                        help="where the browser's model files go (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="export even the models whose export is current")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.models):
        print(f"export_browser.py: no models folder at {args.models}", file=sys.stderr)
        return 2
    from utils.serving.browser_export import export_models
    export_models(args.models, args.out, force=args.force)
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)

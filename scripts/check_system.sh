#!/bin/sh
# Checks what pip cannot install and prints the exact command that adds it.
python="$1"
missing=0
if [ -z "$python" ] || ! "$python" -c "import sys; assert sys.version_info >= (3, 10)" 2>/dev/null; then
    echo "error: Python 3.10 or newer is needed (Debian/Ubuntu: sudo apt-get install python3 python3-venv)" >&2
    exit 2
fi
if ! "$python" -c "import venv, ensurepip" 2>/dev/null; then
    echo "error: Python's venv module is missing: sudo apt-get install python3-venv" >&2
    missing=1
fi
if ! "$python" -c "import tkinter" 2>/dev/null; then
    echo "note: Tk is missing, so the desktop window (index.py) will not start: sudo apt-get install python3-tk" >&2
fi
exit $missing

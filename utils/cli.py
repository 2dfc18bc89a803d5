"""What every command-line tool shares: one-line errors and exit codes, and a quiet start.

A user mistake (missing file, bad data, unknown name) ends with ``error: ...`` on
stderr and exit status 2, never a traceback; Ctrl-C ends quietly with 130. Native
libraries' known start-up notes are kept off stderr (:mod:`utils.quiet`).
"""
import sys

from utils import quiet

# Exceptions that describe a user's input rather than a bug in the program.
USER_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, ValueError)


def one_line(error):
    """An exception as the one line a user reads: its message's first line, else its type's name."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def fail(message, status=2):
    """Print a one-line error and exit."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def run_cli(main, argv=None):
    """A front end's entry point: run ``main(argv)`` with the start-up notes filtered, turning user errors
    into one-line messages."""
    quiet.install()
    try:
        status = main(argv)
    except USER_ERRORS as error:
        fail(one_line(error))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130)
    raise SystemExit(status or 0)

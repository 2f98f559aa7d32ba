"""One error type for everything a user can fix, and the wrapper that turns it into a clean exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class EmbedlabError(Exception):
    """A problem the user can fix (bad param, missing file, unreachable hub...).

    ``fix`` says how; stages print both and exit with status 2 instead of a stack trace.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  fix: {fix}")


class DataError(EmbedlabError):
    """Input data is missing, unreadable or not in the expected shape."""


class ParamsError(EmbedlabError):
    """``params.yaml`` (or a value passed to a library function) is invalid."""


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


def _end_progress_bars() -> None:
    """Close the open tqdm bars, so that the error starts a line of its own (a bar leaves the cursor after it).

    tqdm keeps its open bars in the class attribute ``_instances`` (its FAQ's way to reach them); no public call
    lists them.
    """
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


def _restore() -> None:
    """Under ``dvc repro``, which removed the outputs before this run, put the last run's back (embedlab.restore)."""
    if os.environ.get("DVC_STAGE"):
        from embedlab.restore import restore_outputs

        if restored := restore_outputs():
            print(f"  kept: the previous {', '.join(restored)} (from the DVC cache)", file=sys.stderr)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main`` and turn an :class:`EmbedlabError` into one clear message and exit code 2.

    Under ``python -m embedlab.warm run -- dvc repro`` (``$EMBEDLAB_WARM`` set) the stage runs instead in a child of
    the warm server, which has the heavy libraries imported already, and this process exits with its status;
    :func:`embedlab.warm.delegate` returns None whenever that is not possible, and ``main`` runs here as before.
    """
    from embedlab.warm import delegate

    status = delegate(main)
    if status is not None:
        sys.exit(status)
    traced = bool(os.environ.get("EMBEDLAB_TRACE"))  # tests only: record what the stage used (embedlab.trace)
    if traced:
        from embedlab import trace

        trace.start(sys.argv[0])
    try:
        main()
    except EmbedlabError as err:
        _end_progress_bars()
        print(f"error: {err}", file=sys.stderr)
        _restore()
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        _end_progress_bars()  # Ctrl-C: a line, not a traceback; outputs are written atomically, so none is half
        print(
            "error: interrupted; nothing was published (a training run resumes from its last checkpoint)",
            file=sys.stderr,
        )
        _restore()
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if traced:
            trace.write()

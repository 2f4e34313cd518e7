"""Mistakes a user can fix, and how a stage's failure becomes one line on stderr."""

import errno
import os
import sys
from pathlib import Path

from stages.core.console import log
from stages.core.files import remove_stale_temporaries
from stages.core.paths import STAGE_OUTPUTS


class UserError(Exception):
    """A mistake the user can fix; printed as one line, without a traceback."""


def no_space_left(error):
    """Whether `error` (of any library) says the disk is full."""
    return (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left" in str(error)


def made_by_a_stage(path):
    """Whether `path` (relative to the repository's top folder) is, or is inside, a stage's output."""
    return path is not None and any(Path(path).is_relative_to(output) for output in STAGE_OUTPUTS)


def run(main, argv=None):
    """Run a stage's main(), turning any failure into one line on stderr and a non-zero exit.

    Set STAGES_TRACEBACK=1 to see the traceback of an unexpected error. First, the temporaries that
    killed runs left beside any stage's output are deleted: a re-run that DVC restores from its run
    cache runs no stage, so the stage that left one may never run again to clean up after itself.
    """
    for output in STAGE_OUTPUTS:
        remove_stale_temporaries(output)
    try:
        main() if argv is None else main(argv)
    except UserError as error:
        log(f"error: {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted: nothing half-written was kept; run again to resume")
        sys.exit(130)
    except Exception as error:
        if no_space_left(error):
            log(f"error: no space left on device writing {getattr(error, 'filename', None) or 'output'}: "
                "free some disk space (a full GTZAN run needs about 4 GB) and run again")
            sys.exit(1)
        if isinstance(error, FileNotFoundError) and made_by_a_stage(error.filename):
            log(f"error: {error.filename} is missing: an earlier stage makes it; run `dvc repro` "
                "(or `dvc pull` for outputs pushed to the remote)")
            sys.exit(1)
        if os.environ.get("STAGES_TRACEBACK"):
            raise
        message = " ".join(str(error).split()) or "no message"
        log(f"error: {error.__class__.__name__}: {message} "
            "(unexpected: run again with STAGES_TRACEBACK=1 to see where, and report it)")
        sys.exit(1)

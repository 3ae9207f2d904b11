"""One error type for bad user input, reported as a single line with exit code 2."""

import errno
import logging
import os
import sys


class HfclfInputError(ValueError):
    """Bad user input: the message names the problem and the fix, in one line."""

    exit_code = 2


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def run_command(body) -> int:
    """A command's entry point around `body()`: INFO logging, and bad input (or a full disk) as one `error:` line
    with its exit code (2) instead of a traceback (Ctrl-C: 130); 0 when the body returns. Under a launcher
    (`accelerate launch`, `torchrun`) the main process prints the `error:` line and the others log that they
    stopped."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        body()
    except HfclfInputError as err:
        _stop(str(err))
        return err.exit_code
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback
        _stop("interrupted.")
        return 130
    except Exception as err:
        if not _disk_full(err):
            raise
        _stop(
            f"The disk is full ({first_line(err)}). Free some space or write to another disk, then run again (a "
            "training run goes on from its last complete checkpoint with --resume_from_checkpoint auto)."
        )
        return HfclfInputError.exit_code
    return 0


def _disk_full(err: BaseException | None) -> bool:
    """Whether `err` (or an error that led to it) is "no space left on device", which safetensors reports in its own
    error type."""
    while err is not None:
        if getattr(err, "errno", None) == errno.ENOSPC or "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _stop(message: str) -> None:
    """The main process prints `error: message`; the others (under a launcher) log that they stopped."""
    rank = int(os.environ.get("RANK", "0") or 0)
    if rank == 0:
        print(f"error: {message}", file=sys.stderr)
    else:
        logging.getLogger("hfclf").info("Process %d stops: %s", rank, message)

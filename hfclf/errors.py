"""One error type for bad user input, reported as a single line with exit code 2."""


class HfclfInputError(ValueError):
    """Bad user input: the message names the problem and the fix, in one line."""

    exit_code = 2


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__

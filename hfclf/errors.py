"""One error type for bad user input, reported as a single line with exit code 2."""


class HfclfInputError(ValueError):
    """Bad user input: the message names the problem and the fix, in one line."""

    exit_code = 2

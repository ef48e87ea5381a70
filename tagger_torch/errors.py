"""The one exception type for user errors: the CLI prints its message on one line and exits with 2."""


class TaggerError(Exception):
    """A problem with the user's input (file, flag, config); never a bug in this package."""

    exit_code = 2


def first_line(error: BaseException) -> str:
    """The first line of another library's error message, to quote inside a one-line TaggerError."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__

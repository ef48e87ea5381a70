"""The one exception type for user errors: the CLI prints its message on one line and exits with 2."""


class TaggerError(Exception):
    """A problem with the user's input (file, flag, config); never a bug in this package."""

    exit_code = 2

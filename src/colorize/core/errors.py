"""The base of every error a user can fix: stages print its message on one line, no traceback."""


class UserError(Exception):
    """Bad params, bad input or missing artifacts: the message says what and where."""

"""Errors a user can act on. The CLI prints them as one line and exits with their code."""


class MasqueradeError(Exception):
    """An expected failure with a message meant for the user (no traceback)."""

    exit_code = 1


class InputError(MasqueradeError):
    """Bad input from the user: a missing or unreadable file, a bad option value. Exit code 2."""

    exit_code = 2

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def error_line(exc: MasqueradeError) -> str:
    """The one line a user sees for an error, in the CLI and in the UI alike."""
    return f"masquerade: error: {exc}"

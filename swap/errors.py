"""Errors that the CLI turns into a one-line message and an exit code (no traceback)."""


class VeriswapError(Exception):
    """A failure the user can act on. `exit_code` follows DESIGN.md: 2 = bad input/usage."""

    exit_code = 2


class InputError(VeriswapError):
    """Unusable input: missing/unreadable file, not a video, zero faces, foreign checkpoint..."""

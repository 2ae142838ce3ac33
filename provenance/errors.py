"""Errors the CLI turns into one line and an exit code (the root CLI reads `exit_code`)."""
from __future__ import annotations


class ProvenanceError(Exception):
    """Unusable input (missing/garbled file, wrong passphrase, unsupported format): exit 2."""

    exit_code = 2


class KeyFileError(ProvenanceError):
    """A key or certificate that cannot be loaded or used."""


class TagFormatError(ProvenanceError):
    """A tag file that is not a well-formed veriswap tag file (never a crash, always exit 2)."""


class UnsupportedMediaError(ProvenanceError):
    """A file type C2PA signing or tagging cannot handle (e.g. WebM)."""

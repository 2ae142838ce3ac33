"""The one error root of veriswap and its typed subclasses.

The root CLI (`veriswap.cli.main`) turns any `VeriswapError` into a one-line message and exits with the
error's `exit_code` (DESIGN.md: 2 = bad input or usage); anything else is a bug and keeps its traceback
under `--debug`. This module sits in provenance/ because provenance is the bottom layer: swap, detect and
veriswap all import it, it imports none of them.
"""
from __future__ import annotations


class VeriswapError(Exception):
    """A failure the user can act on. `exit_code` follows DESIGN.md: 2 = bad input/usage."""

    exit_code = 2


class InputError(VeriswapError):
    """Unusable input: missing/unreadable file, not a video, zero faces, foreign checkpoint, a bad setting..."""


class ProvenanceError(VeriswapError):
    """Unusable input (missing/garbled file, wrong passphrase, unsupported format): exit 2."""


class KeyFileError(ProvenanceError):
    """A key or certificate that cannot be loaded or used."""


class TagFormatError(ProvenanceError):
    """A tag file that is not a well-formed veriswap tag file (never a crash, always exit 2)."""


class UnsupportedMediaError(ProvenanceError):
    """A file type C2PA signing or tagging cannot handle (e.g. WebM)."""

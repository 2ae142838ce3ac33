"""veriswap provenance: keys, C2PA sign/verify, per-frame footage tags. Never imports torch."""
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("veriswap")
except _metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"

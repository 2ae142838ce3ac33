"""veriswap swap pipeline: extract -> train -> convert."""

__version__ = "0.1.0"

"""The errors swap raises: the one root lives in `provenance.errors` (the bottom layer); re-exported here."""
from provenance.errors import InputError, VeriswapError

__all__ = ["InputError", "VeriswapError"]

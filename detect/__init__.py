"""veriswap detector: datasets of real vs swapped faces, timm classifier, eval, scoring."""

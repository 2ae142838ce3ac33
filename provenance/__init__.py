"""veriswap provenance: keys, C2PA sign/verify, per-frame footage tags. Never imports torch."""

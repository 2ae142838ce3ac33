"""The extract stage: detect, align and crop faces from videos/images into a faces folder + alignments file.

    from swap.extract import ExtractSettings, extract
    summary = extract(["clip.mp4"], "faces/a", settings=ExtractSettings(size=256))

`settings` (ExtractSettings and its checks, ExtractSummary), `pipeline` (`extract`: plan, run, merge), `chunks`
(the workers' unit of work and of resume), `cli` (the `veriswap extract` command).
"""
from __future__ import annotations

__all__ = ["ExtractSettings", "ExtractSummary", "extract"]


def __getattr__(name: str):
    # lazy, so `veriswap --help` and the CLI modules of this stage import none of the heavy libraries
    if name in ('ExtractSettings', 'ExtractSummary'):
        from . import settings
        return getattr(settings, name)
    if name in ('extract',):
        from . import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

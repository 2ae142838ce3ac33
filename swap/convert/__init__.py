"""The convert stage: a video + a trained model -> a swapped, labelled (swap.labels), C2PA-signed video.

    from swap.convert import ConvertSettings, convert
    summary = convert("clip.mp4", "runs/ab", "out/clip_a2b.mp4", settings=ConvertSettings(direction="a2b"))

`settings` (ConvertSettings + checks, ConvertSummary), `pipeline` (one video: check, work folder, publish),
`render` (the frame loop), `batch` (many videos into a folder), `parts` (resumable segments), `composite`,
`color` (colour-transfer registry), `masks` (mask registry), `cli` (the `veriswap convert` command).
"""
from __future__ import annotations

__all__ = ["BatchItem", "ConvertSettings", "ConvertSummary", "convert", "convert_many"]


def __getattr__(name: str):
    # lazy, so `veriswap --help` and the CLI modules of this stage import none of the heavy libraries
    if name in ('ConvertSettings', 'ConvertSummary'):
        from . import settings
        return getattr(settings, name)
    if name in ('convert',):
        from . import pipeline
        return getattr(pipeline, name)
    if name in ('BatchItem', 'convert_many'):
        from . import batch
        return getattr(batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

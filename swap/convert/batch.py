"""Convert many videos with one model (a research dataset's worth): `veriswap convert VIDEO... -o OUT_DIR`.

Each video becomes OUT_DIR/{stem}_{direction}.mp4 with its labels beside it. A video whose output is
already there, made from the same source with the same model and settings (its labels say so), is
skipped, so a re-run after an interruption carries on where it stopped (the interrupted video resumes
from its finished segments). A video that fails (not in the alignments file, unreadable) is reported and
the others are converted; the caller decides the exit code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from ..errors import InputError
from ..labels import default_labels_dir, read_labels
from ..lock import folder_lock
from ..video import VIDEO_EXTS, expand_inputs
from .pipeline import ConvertSettings, ConvertSummary, convert, output_settings


@dataclass
class BatchItem:
    video: str
    out: str
    status: str                             # "converted" | "skipped" (already done) | "failed"
    summary: Optional[ConvertSummary] = None
    error: Optional[str] = None


def batch_outputs(videos: Sequence[Path], out_dir: Path, direction: str) -> List[Tuple[Path, Path]]:
    """(video, output) pairs; folders expand to their videos. Two inputs that would share an output name
    are refused before any work."""
    pairs: List[Tuple[Path, Path]] = []
    seen = {}
    for v in expand_inputs(videos):
        if v.is_dir() or v.suffix.lower() not in VIDEO_EXTS:
            raise InputError(f"convert takes videos or folders of videos, not {v}")
        out = Path(out_dir) / f"{v.stem}_{direction}.mp4"
        if out in seen:
            raise InputError(f"{seen[out]} and {v} would both be written to {out.name}: rename one")
        seen[out] = v
        pairs.append((v, out))
    return pairs


def already_done(video: Path, out: Path, model_sha: str, settings: ConvertSettings) -> bool:
    """The output exists and its labels record this source, model and these settings."""
    try:
        lab = read_labels(default_labels_dir(out))
    except InputError:
        return False
    want = json.loads(json.dumps(output_settings(settings)))        # as the labels hold them (JSON types)
    got = lab.settings or {}
    return (out.is_file() and lab.source == str(Path(video).resolve())
            and lab.model_sha256 == "sha256:" + model_sha
            and {k: got.get(k) for k in want} == want)


def convert_many(videos: Sequence[Path], model_dir: Path, out_dir: Path, alignments: Optional[Path] = None,
                 settings: Optional[ConvertSettings] = None,
                 progress: Optional[Callable[[int, int], None]] = None,
                 on_start: Optional[Callable[[int, int, Path], None]] = None) -> List[BatchItem]:
    """Convert each video (see the module doc). `on_start(i, n, video)` before each one; `progress` as in
    `convert`, per video."""
    from ..models.checkpoint import read_config

    s = settings or ConvertSettings()
    pairs = batch_outputs(videos, Path(out_dir), s.direction)
    sha = read_config(model_dir).get("weights", {}).get("sha256", "")
    with folder_lock(Path(out_dir), "veriswap convert (batch)"):    # a second batch into it is refused
        return _convert_each(pairs, model_dir, alignments, s, sha, progress, on_start)


def _convert_each(pairs: List[Tuple[Path, Path]], model_dir: Path, alignments: Optional[Path], s: ConvertSettings,
                  sha: str, progress: Optional[Callable[[int, int], None]],
                  on_start: Optional[Callable[[int, int, Path], None]]) -> List[BatchItem]:
    items: List[BatchItem] = []
    for i, (video, out) in enumerate(pairs):
        if on_start:
            on_start(i, len(pairs), video)
        if already_done(video, out, sha, s):
            items.append(BatchItem(str(video), str(out), "skipped"))
            continue
        try:
            summ = convert(video, model_dir, out, alignments, s, progress=progress)
        except InputError as e:
            items.append(BatchItem(str(video), str(out), "failed", error=str(e)))
            continue
        items.append(BatchItem(str(video), str(out), "converted", summ))
    return items


def check_batch(videos: Sequence[Path], out: Path, labels_dir: Optional[Path] = None) -> bool:
    """Whether `videos` -> `out` is a batch (several inputs, a folder, or -o a folder); a batch whose -o
    names a video, or that asks for one labels folder, is an InputError."""
    videos, out = [Path(v) for v in videos], Path(out)
    batch = len(videos) > 1 or videos[0].is_dir() or out.is_dir() or not out.suffix
    if batch and out.suffix.lower() in (".mp4", ".mov"):
        raise InputError("several inputs or a folder: -o must be a folder (each video -> OUT/{stem}_{direction}.mp4)")
    if batch and labels_dir is not None:
        raise InputError("--labels-dir is for one output video; with -o a folder, labels go beside each output")
    return batch

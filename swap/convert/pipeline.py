"""The convert stage: a video + a trained model -> a swapped, labelled, C2PA-signed video.

Per frame, for every face of the source identity in the alignments file: warp the face out with its
alignment matrix, swap it with the model, match its colour to the original, build a soft mask
(landmark hull or the model's learned mask), warp both back and composite. The output keeps the
source's frame rate and audio (PyAV, H.264), and comes with research labels:

    OUT.mp4                     signed: C2PA manifest declaring a composite with AI-generated media
    OUT.labels/labels.json      per frame: swapped or not, each swapped face's box and landmarks
    OUT.labels/masks/NNNNNN.png per swapped frame: the manipulation mask (0-255, frame size)

Nothing half-written, and resumable: the video is encoded in segments kept in `.OUT.mp4.parts/` beside OUT.mp4
(swap/convert/parts.py); an interrupted convert leaves no OUT.mp4, and the same command run again picks up
at the first unfinished segment. At the end the segments are joined (no re-encode) with the source's
audio, signed into place, the labels written atomically and the work folder removed.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from .. import __version__
from .. import alignments as A
from ..device import resolve_device
from ..errors import InputError
from ..labels import FrameLabel, Labels, default_labels_dir, parse_frame_ranges, write_labels
from ..lock import folder_lock
from ..video import VideoInfo, atomic_write_bytes, probe, remove_stale_temps
from .composite import sharpen
from .parts import Parts, join_segments, open_parts, parts_folder
from .render import _render, _Swapper
from .settings import ConvertSettings, ConvertSummary, output_settings

__all__ = ["ConvertSettings", "ConvertSummary", "convert", "default_labels_dir", "output_settings", "sharpen"]


def alignments_for(video: Path, alignments: Optional[Path], work: Path) -> Tuple[A.SourceRecord, int]:
    """The source's record from the given alignments file, or from a fresh extract of the video, and
    the file's `every` (frames between processed ones)."""
    if alignments is None:
        from ..extract import extract

        extract([video], work / "faces")
        alignments = work / "faces" / "alignments.json"
    aln = A.load(alignments)
    rec = aln.source_for(video)
    if rec is None:
        raise InputError(f"{alignments} holds no faces of {video.name} (extract it first, or omit --alignments)")
    return rec, int(aln.settings.get("every", 1))


def _crops_in(faces_dir: Path, rec: A.SourceRecord) -> set:
    """Names of the aligned crops of `rec` still present in `faces_dir` (an error if none is: the wrong folder
    would otherwise give an unswapped video)."""
    from ..video import list_images

    if not faces_dir.is_dir():
        raise InputError(f"--faces-dir is not a folder: {faces_dir}")
    names = {p.name for p in list_images(faces_dir)}
    wanted = {f.file for faces in rec.frames.values() for f in faces}
    if not names & wanted:
        raise InputError(f"--faces-dir {faces_dir} holds none of this video's aligned crops "
                         f"(e.g. {min(wanted) if wanted else '-'}): is it the extract folder of this video?")
    return names


def _check_io(video: Path, out: Path, s: ConvertSettings) -> Tuple[VideoInfo, Optional[list]]:
    """The input is a video, the output a new .mp4/.mov, --frames selects some frame: (info, ranges)."""
    ranges = parse_frame_ranges(s.frames)
    if out.suffix.lower() not in (".mp4", ".mov"):
        raise InputError(f"output must be .mp4 or .mov (C2PA-signed H.264), got {out.name}")
    if out.resolve() == video.resolve():
        raise InputError("output would overwrite the input video")
    info = probe(video)
    out.parent.mkdir(parents=True, exist_ok=True)
    if info.is_image:
        raise InputError(f"convert takes a video, got an image: {video}")
    if ranges and info.frames and min(lo for lo, _ in ranges) >= info.frames:
        raise InputError(f"--frames {s.frames} selects no frame: {video.name} has {info.frames} (0-{info.frames - 1})")
    return info, ranges


def _labels_record(video: Path, out: Path, info: VideoInfo, cfg: Dict, s: ConvertSettings,
                   summary: ConvertSummary, frames: List[Dict]) -> Labels:
    return Labels(
        created_by=f"veriswap {__version__}", source=str(video.resolve()), output=out.name,
        width=info.width, height=info.height, fps=info.fps, direction=s.direction,
        model={"architecture": cfg["architecture"], "sha256": "sha256:" + cfg["weights"]["sha256"],
               "iteration": cfg.get("iteration"),
               "identities": {k: (v or {}).get("name") for k, v in cfg.get("identities", {}).items()}},
        settings=asdict(s) | {"key_dir": None},
        counts={"frames": summary.frames, "frames_swapped": summary.frames_swapped,
                "faces_swapped": summary.faces_swapped, "faces_skipped": summary.faces_skipped,
                "faces_outside_frames": summary.faces_outside, "faces_not_in_faces_dir": summary.faces_removed},
        frames=[FrameLabel.from_dict(f) for f in frames])


def _watermark(parts: Parts, identity, info: VideoInfo, s: ConvertSettings):
    """The watermark binding of this output (its label kept in the work folder, so a resumed convert
    embeds the same id), or None: off, unsigned, or a frame too small to carry the payload."""
    from provenance.watermark.core import MIN_SIDE

    if not (s.sign and s.watermark) or min(info.width, info.height) < MIN_SIDE:
        return None
    from provenance.watermark.binding import Binding, new_binding, signer_key_bytes
    from provenance.watermark.core import payload_id

    f = parts.folder / "watermark.json"
    if f.is_file():
        label = json.loads(f.read_text())["label"]
        return Binding(label, payload_id(label, signer_key_bytes(identity)))
    b = new_binding(identity)
    atomic_write_bytes(f, json.dumps({"label": b.label}).encode())
    return b


def _publish(video: Path, out: Path, info: VideoInfo, cfg: Dict, s: ConvertSettings, parts: Parts,
             summary: ConvertSummary, labels_dir: Path, identity, binding=None) -> None:
    """Join the segments with the source's audio, sign the result into place, write the labels."""
    metas = parts.done()
    if not metas:
        raise InputError(f"no frames decoded from {video}")
    frames_out = [f for m in metas for f in m["frames"]]
    unsigned = parts.folder / ("unsigned" + out.suffix.lower())
    join_segments([parts.video(m["segment"]) for m in metas], unsigned, info.fps, video)
    labels = _labels_record(video, out, info, cfg, s, summary, frames_out)
    if s.sign:
        from provenance.c2pa_sign import SwapFacts, sign_file

        facts = SwapFacts(model_hash=labels.model_sha256, direction=s.direction,
                          identities={k: str(v) for k, v in labels.model["identities"].items()},
                          frames_total=summary.frames, frames_swapped=summary.frames_swapped,
                          faces_swapped=summary.faces_swapped, source=str(video),
                          model_name=cfg["architecture"], labels_file=str(labels_dir / "labels.json"),
                          swapped_frames=labels.swapped_frames,
                          extra={"watermark": binding.payload if binding is not None else "off"})
        if binding is not None:     # soft-binding assertion + the manifest kept in the local store
            from provenance.watermark.binding import sign_watermarked

            res = sign_watermarked(unsigned, out, identity, binding, facts=facts, source=video,
                                   duration_ms=int(round(summary.frames / float(info.fps) * 1000)))
        else:
            res = sign_file(unsigned, out, identity, facts=facts, source=video)
        summary.manifest = labels.c2pa_manifest = res.manifest_label
    else:
        os.replace(unsigned, out)
    write_labels(labels_dir, labels)


def _open_work(video: Path, out: Path, alignments: Optional[Path], cfg: Dict, s: ConvertSettings,
               labels_dir: Path, summary: ConvertSummary) -> Tuple[Parts, A.SourceRecord, Optional[set]]:
    """The work folder (finished segments, kept across runs while the plan matches: see parts.py), the
    source's alignments, the crops --faces-dir keeps, and the running totals of a resumed run."""
    masks_dir = labels_dir / "masks"
    plan = {"source": {"path": str(video.resolve()), **A.fingerprint(video)}, "model": cfg["weights"]["sha256"],
            "alignments": A.fingerprint(Path(alignments)) if alignments else None,
            "labels_dir": str(labels_dir.resolve()),
            "settings": output_settings(s)}
    parts, resumed = open_parts(out, plan, s.segment_frames)
    if not resumed and masks_dir.is_dir():      # another run's masks: frames it swapped may not be swapped now
        for old in masks_dir.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
            old.unlink()
    for folder in (labels_dir, masks_dir):      # temp files a killed run left mid-write (we hold the output)
        remove_stale_temps(folder)
    rec, every = alignments_for(video, Path(alignments) if alignments else None, parts.folder)
    kept_crops = _crops_in(Path(s.faces_dir), rec) if s.faces_dir else None
    if every > 1:
        summary.warnings.append(f"alignments cover every {every}th frame: frames between are not swapped")
    masks_dir.mkdir(parents=True, exist_ok=True)
    done = parts.done()
    if done:        # carry on from the last finished segment's running totals
        for k, v in done[-1]["totals"].items():
            setattr(summary, k, v)
        summary.frames_resumed = summary.frames
    return parts, rec, kept_crops


def convert(video: Path, model_dir: Path, out: Path, alignments: Optional[Path] = None,
            settings: Optional[ConvertSettings] = None, labels_dir: Optional[Path] = None,
            progress: Optional[Callable[[int, int], None]] = None) -> ConvertSummary:
    """Swap the faces of `video` with the model in `model_dir`; write OUT (signed) + labels + masks."""
    from ..models import load_model

    t0 = time.perf_counter()
    s = settings or ConvertSettings()
    video, out = Path(video), Path(out)
    s.check()
    info, ranges = _check_io(video, out, s)
    device = resolve_device(s.device)
    model, cfg = load_model(model_dir, device=device)
    if s.mask == "learned" and not cfg.get("has_mask"):
        raise InputError("this model has no mask head (train --model hq for a learned mask); use --mask hull")
    identity = None
    if s.sign:      # load the key before hours of work, so a wrong passphrase fails now
        from provenance.keys import default_identity, load_identity

        identity = load_identity(Path(s.key_dir)) if s.key_dir else default_identity()
    labels_dir = Path(labels_dir) if labels_dir else default_labels_dir(out)
    summary = ConvertSummary(out=str(out), labels=str(labels_dir / "labels.json"))

    # one convert per output at a time: a second one would write the same segments
    with folder_lock(parts_folder(out), "veriswap convert"):
        parts, rec, kept_crops = _open_work(video, out, alignments, cfg, s, labels_dir, summary)
        sw = _Swapper(model, cfg, s, labels_dir / "masks", summary, info, progress)
        binding = _watermark(parts, identity, info, s)
        if binding is not None:
            from provenance.watermark import Embedder

            sw.wm = Embedder(binding.pid, (info.width, info.height))
            summary.watermark = binding.payload
        _render(video, rec, ranges, kept_crops, parts, sw)
        _publish(video, out, info, cfg, s, parts, summary, labels_dir, identity, binding)
        parts.remove()
    summary.seconds = time.perf_counter() - t0
    return summary

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from .. import __version__
from .. import alignments as A
from ..device import resolve_device
from ..errors import InputError
from ..labels import FrameLabel, Labels, default_labels_dir, in_ranges, mask_name, parse_frame_ranges, write_labels
from ..lock import folder_lock
from ..video import (VideoInfo, VideoWriter, atomic_write_bytes, iter_frames, probe, remove_stale_temps,
                     write_image_atomic)
from .color import COLOR_TRANSFERS, color_transfer
from .composite import _paste, sharpen
from .masks import MASKS, face_mask
from .parts import Parts, join_segments, open_parts, parts_folder

__all__ = ["ConvertSettings", "ConvertSummary", "convert", "default_labels_dir", "output_settings", "sharpen"]


@dataclass
class ConvertSettings:
    direction: str = "a2b"          # a2b: faces of identity A become B
    color: str = "avg"
    mask: str = "hull"
    erode: float = 0.03             # mask erosion, fraction of face size
    blur: float = 0.06              # mask feather, fraction of face size
    sharpen: float = 0.0            # unsharp-mask amount on the swapped face (the decoders' output is soft; 0: off)
    max_distance: Optional[float] = 0.6   # swap only faces this close to the source identity (None: all)
    crf: int = 18
    device: str = "auto"
    batch_size: int = 8             # faces per model forward (frames are buffered until it is full)
    sign: bool = True               # C2PA-sign the output (every generated video is signed)
    key_dir: Optional[str] = None   # signing identity folder (default: the local identity)
    watermark: bool = True          # invisible watermark naming the signed manifest (C2PA soft binding; with sign)
    frames: Optional[str] = None    # swap only in these frame ranges, e.g. "0-99,250-" (None: every frame)
    segment_frames: int = 500       # frames per resumable segment (an interrupted convert redoes at most one)
    faces_dir: Optional[str] = None  # swap only faces whose aligned crop is still in this folder (faceswap's
                                     # --input-aligned-dir: delete or `sort --apply` bad crops, they stay unswapped)

    def check(self) -> None:
        """Every setting checked (InputError naming the option) before any work; `convert` calls it."""
        if self.direction not in ("a2b", "b2a"):
            raise InputError("--direction must be a2b or b2a")
        if self.batch_size < 1 or self.segment_frames < 1:
            raise InputError("--batch-size and the segment length must be >= 1")
        if not 0 <= self.sharpen <= 5:
            raise InputError(f"--sharpen must be between 0 and 5, got {self.sharpen}")
        COLOR_TRANSFERS.lookup(self.color)
        MASKS.lookup(self.mask)
        parse_frame_ranges(self.frames)


@dataclass
class ConvertSummary:
    frames: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    faces_skipped: int = 0          # other people, kept as they are
    faces_outside: int = 0          # faces of the source identity outside --frames, kept as they are
    faces_removed: int = 0          # faces whose crop is not in --faces-dir, kept as they are
    frames_resumed: int = 0         # frames an interrupted run had finished (taken from its work folder)
    seconds: float = 0.0
    out: str = ""
    labels: str = ""
    manifest: Optional[str] = None  # active C2PA manifest label of the signed output
    watermark: Optional[str] = None  # payload id of the invisible watermark (None: none embedded)
    warnings: List[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return (self.frames - self.frames_resumed) / self.seconds if self.seconds > 0 else 0.0   # this run's


def _alignments_for(video: Path, alignments: Optional[Path], work: Path) -> Tuple[A.SourceRecord, int]:
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


TOTALS = ("frames", "frames_swapped", "faces_swapped", "faces_skipped", "faces_outside", "faces_removed")


def output_settings(s: ConvertSettings) -> Dict:
    """The settings that decide the output's pixels and labels (not where the work runs, the batch size
    or who signs): what a resumed segment or a skipped batch item must agree on."""
    return {k: v for k, v in asdict(s).items() if k not in ("key_dir", "device", "batch_size", "sign")}


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


class _Swapper:
    """Which faces of a frame to swap, and the swapping itself: frames wait in `pending` until a batch of
    faces is full, then one forward pass swaps them all, each is recoloured, masked and pasted back, and the
    frames go to the segment's writer with their labels (`seg_frames`) and masks."""

    def __init__(self, model, cfg: Dict, s: ConvertSettings, masks_dir: Path, summary: ConvertSummary,
                 info: VideoInfo, progress: Optional[Callable[[int, int], None]]):
        self.model, self.cfg, self.s, self.masks_dir, self.summary = model, cfg, s, masks_dir, summary
        self.info, self.progress = info, progress
        self.cov = float(cfg.get("coverage", 1.0))
        src_id = "a" if s.direction == "a2b" else "b"
        centroid = (cfg.get("identities", {}).get(src_id) or {}).get("embedding_centroid")
        self.centroid = None if centroid is None or s.max_distance is None else np.asarray(centroid, np.float32)
        self.pending: List[tuple] = []       # (frame, [(face record, crop)]) waiting for one batched forward
        self.seg_frames: List[Dict] = []     # the labels of the segment being written
        self.wm = None                       # provenance.watermark Embedder applied to every written frame
        self.queued = 0

    def select(self, fr, faces: List[A.FaceRecord], in_range: bool, kept_crops: Optional[set]) -> list:
        """(face record, aligned crop) of the faces of this frame to swap; the others are counted."""
        todo = []
        for f in faces:
            if not in_range:
                self.summary.faces_outside += 1
                continue
            if kept_crops is not None and f.file not in kept_crops:
                self.summary.faces_removed += 1
                continue
            if self.centroid is not None and f.embedding is not None:
                if np.linalg.norm(np.asarray(f.embedding, np.float32) - self.centroid) > self.s.max_distance:
                    self.summary.faces_skipped += 1
                    continue
            crop = cv2.warpAffine(fr.rgb, f.matrix_array(), (f.size, f.size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT)
            todo.append((f, crop))
        return todo

    def add(self, fr, todo: list, writer: VideoWriter) -> None:
        self.pending.append((fr, todo))
        self.queued += len(todo)
        if self.queued >= self.s.batch_size or len(self.pending) >= 2 * self.s.batch_size:
            self.flush(writer)

    def _swap_face(self, rgb: np.ndarray, f: A.FaceRecord, crop: np.ndarray, swapped: np.ndarray, learned):
        """Recolour, mask and paste one swapped crop into `rgb`; (its label, the frame-sized mask applied)."""
        s = self.s
        mtx = f.matrix_array()
        pts = f.landmarks_array() @ mtx[:, :2].T + mtx[:, 2]
        margin = int(round(f.size * (1 - self.cov) / 2))
        mask = face_mask(s.mask, pts, f.size, learned, margin, s.erode, s.blur)
        swapped = sharpen(color_transfer(s.color, swapped, crop, mask > 0.5), s.sharpen)
        m = _paste(rgb, swapped, mask, cv2.invertAffineTransform(mtx))
        return {"face": f.face, "track": f.track, "box": f.box, "landmarks": f.landmarks,
                "mask_pixels": int((m > 127).sum())}, m

    def flush(self, writer: VideoWriter) -> None:
        from ..models import swap_crops

        crops = [c for _, todo in self.pending for _, c in todo]
        results = iter(swap_crops(self.model, self.cfg, crops, self.s.direction))
        summary = self.summary
        for fr, todo in self.pending:
            rgb = fr.rgb
            faces_lab = []
            applied = np.zeros(rgb.shape[:2], np.uint8)
            for f, crop in todo:
                label, m = self._swap_face(rgb, f, crop, *next(results))
                np.maximum(applied, m, out=applied)
                faces_lab.append(label)
            entry = {"index": fr.index, "time": round(fr.time, 6), "swapped": bool(faces_lab), "faces": faces_lab}
            if faces_lab:
                name = mask_name(fr.index)
                write_image_atomic(self.masks_dir / name, applied, fsync=False)
                entry["mask"] = f"masks/{name}"
                summary.frames_swapped += 1
                summary.faces_swapped += len(faces_lab)
            self.seg_frames.append(entry)
            writer.write(self.wm(rgb) if self.wm is not None else rgb)
            summary.frames += 1
            if self.progress:
                self.progress(summary.frames, self.info.frames)
        self.pending.clear()
        self.queued = 0

    def finish_segment(self, parts: Parts, k: int, writer: VideoWriter) -> None:
        """Swap what is buffered, close the segment's video (atomic), then record it as done with its labels
        and the running totals (the record is what makes it count)."""
        self.flush(writer)
        writer.close()
        parts.finish(k, {"frames": list(self.seg_frames),
                         "totals": {t: getattr(self.summary, t) for t in TOTALS}})
        self.seg_frames.clear()


def _render(video: Path, rec: A.SourceRecord, ranges, kept_crops: Optional[set], parts: Parts, sw: _Swapper) -> None:
    """Decode from the first unfinished segment on and write each segment's video, labels and masks."""
    import torch

    s, info = sw.s, sw.info
    writer: Optional[VideoWriter] = None
    seg = len(parts.done())
    try:
        with torch.inference_mode():
            for fr in iter_frames(video, start=seg * s.segment_frames):
                if writer is None or fr.index // s.segment_frames != seg:
                    if writer is not None:
                        sw.finish_segment(parts, seg, writer)
                    seg = fr.index // s.segment_frames
                    writer = VideoWriter(parts.video(seg), info.width, info.height, info.fps, crf=s.crf)
                todo = sw.select(fr, rec.frames.get(fr.index, []), in_ranges(fr.index, ranges), kept_crops)
                sw.add(fr, todo, writer)
            if writer is not None:
                sw.finish_segment(parts, seg, writer)
                writer = None
    except BaseException:
        if writer is not None:      # the unfinished segment goes; the finished ones stay for the re-run
            writer.abort()
        raise


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
    rec, every = _alignments_for(video, Path(alignments) if alignments else None, parts.folder)
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

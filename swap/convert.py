"""The convert stage: a video + a trained model -> a swapped, labelled, C2PA-signed video.

Per frame, for every face of the source identity in the alignments file: warp the face out with its
alignment matrix, swap it with the model, match its colour to the original, build a soft mask
(landmark hull or the model's learned mask), warp both back and composite. The output keeps the
source's frame rate and audio (PyAV, H.264), and comes with research labels:

    OUT.mp4                     signed: C2PA manifest declaring a composite with AI-generated media
    OUT.labels/labels.json      per frame: swapped or not, each swapped face's box and landmarks
    OUT.labels/masks/NNNNNN.png per swapped frame: the manipulation mask (0-255, frame size)

Nothing half-written, and resumable: the video is encoded in segments kept in `.OUT.mp4.parts/` beside OUT.mp4
(swap/convert_parts.py); an interrupted convert leaves no OUT.mp4, and the same command run again picks up
at the first unfinished segment. At the end the segments are joined (no re-encode) with the source's
audio, signed into place, the labels written atomically and the work folder removed.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from . import __version__
from . import alignments as A
from .color import COLOR_TRANSFERS, color_transfer
from .convert_parts import Parts, join_segments, open_parts, parts_folder
from .device import resolve_device
from .errors import InputError
from .lock import folder_lock
from .masks import MASKS, face_mask
from .video import VideoWriter, atomic_write_bytes, iter_frames, probe, remove_stale_temps, write_image_atomic

LABELS_FORMAT = "veriswap-labels"
LABELS_VERSION = 1


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
    frames: Optional[str] = None    # swap only in these frame ranges, e.g. "0-99,250-" (None: every frame)
    segment_frames: int = 500       # frames per resumable segment (an interrupted convert redoes at most one)
    faces_dir: Optional[str] = None  # swap only faces whose aligned crop is still in this folder (faceswap's
                                     # --input-aligned-dir: delete or `sort --apply` bad crops, they stay unswapped)


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
    warnings: List[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return (self.frames - self.frames_resumed) / self.seconds if self.seconds > 0 else 0.0   # this run's


def _alignments_for(video: Path, alignments: Optional[Path], work: Path) -> Tuple[A.SourceRecord, int]:
    """The source's record from the given alignments file, or from a fresh extract of the video, and
    the file's `every` (frames between processed ones)."""
    if alignments is None:
        from .extract import extract

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


def _finish_segment(parts: Parts, k: int, writer: VideoWriter, flush: Callable[[VideoWriter], None],
                    seg_frames: List[Dict], summary: "ConvertSummary") -> None:
    """Swap what is buffered, close the segment's video (atomic), then record it as done with its labels
    and the running totals (the record is what makes it count)."""
    flush(writer)
    writer.close()
    parts.finish(k, {"frames": list(seg_frames), "totals": {t: getattr(summary, t) for t in TOTALS}})
    seg_frames.clear()


def _crops_in(faces_dir: Path, rec: A.SourceRecord) -> set:
    """Names of the aligned crops of `rec` still present in `faces_dir` (an error if none is: the wrong folder
    would otherwise give an unswapped video)."""
    from .video import list_images

    if not faces_dir.is_dir():
        raise InputError(f"--faces-dir is not a folder: {faces_dir}")
    names = {p.name for p in list_images(faces_dir)}
    wanted = {f.file for faces in rec.frames.values() for f in faces}
    if not names & wanted:
        raise InputError(f"--faces-dir {faces_dir} holds none of this video's aligned crops "
                         f"(e.g. {min(wanted) if wanted else '-'}): is it the extract folder of this video?")
    return names


def parse_frame_ranges(text: Optional[str]) -> Optional[List[Tuple[int, Optional[int]]]]:
    """'0-99,250-,300' -> [(0, 99), (250, None), (300, 300)]: inclusive frame-index ranges (None: to the end).
    Partial swaps make the temporal-localisation material (which frames were altered) research needs."""
    if text is None:
        return None
    ranges: List[Tuple[int, Optional[int]]] = []
    for part in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:(-)(\d*))?", part)
        if not m:
            raise InputError(f"bad --frames {text!r}: use frame indices and ranges like 0-99,250-")
        lo = int(m.group(1))
        hi = lo if not m.group(2) else None if m.group(3) == "" else int(m.group(3))   # "7" | "7-" | "7-9"
        if hi is not None and hi < lo:
            raise InputError(f"bad --frames range {part!r}: the end is before the start")
        ranges.append((lo, hi))
    return ranges


def format_frame_ranges(indices: List[int]) -> str:
    """[2, 3, 4, 5, 12, 13] -> '2-5,12-13' (the inverse of parse_frame_ranges for closed ranges)."""
    runs: List[List[int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def in_ranges(index: int, ranges: Optional[List[Tuple[int, Optional[int]]]]) -> bool:
    return ranges is None or any(lo <= index and (hi is None or index <= hi) for lo, hi in ranges)


def sharpen(face: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp mask (faceswap's convert sharpening): face + amount * (face - gaussian blur), the blur's
    sigma 0.6% of the crop (about 1.5 px at 256), so only the fine detail the decoder smoothed is lifted."""
    if amount <= 0:
        return face
    f = face.astype(np.float32)
    soft = cv2.GaussianBlur(f, (0, 0), max(0.5, 0.006 * face.shape[0]))
    return np.clip(f + amount * (f - soft) + 0.5, 0, 255).astype(np.uint8)


def _paste(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Warp a crop and its soft mask back into the frame (only over the face's bounding box) and blend.
    Returns the frame-sized mask actually applied, as uint8 0-255."""
    h, w = frame.shape[:2]
    s = face.shape[0]
    corners = np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    full = np.zeros((h, w), np.uint8)
    if x1 <= x0 or y1 <= y0:
        return full
    m = inv.copy()
    m[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    fw = cv2.warpAffine(face, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mw = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    a = mw[..., None]
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - a) + fw.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
    full[y0:y1, x0:x1] = np.clip(mw * 255 + 0.5, 0, 255).astype(np.uint8)
    return full


def default_labels_dir(out: Path) -> Path:
    return Path(out).with_name(Path(out).stem + ".labels")


def convert(video: Path, model_dir: Path, out: Path, alignments: Optional[Path] = None,
            settings: Optional[ConvertSettings] = None, labels_dir: Optional[Path] = None,
            progress: Optional[Callable[[int, int], None]] = None) -> ConvertSummary:
    """Swap the faces of `video` with the model in `model_dir`; write OUT (signed) + labels + masks."""
    import torch

    from .models import load_model, swap_crops

    t0 = time.perf_counter()
    s = settings or ConvertSettings()
    video, out = Path(video), Path(out)
    if s.direction not in ("a2b", "b2a"):
        raise InputError("--direction must be a2b or b2a")
    if s.batch_size < 1 or s.segment_frames < 1:
        raise InputError("--batch-size and the segment length must be >= 1")
    if not 0 <= s.sharpen <= 5:
        raise InputError(f"--sharpen must be between 0 and 5, got {s.sharpen}")
    if s.color not in COLOR_TRANSFERS:
        raise InputError(f"unknown --color {s.color!r}; choose from {', '.join(COLOR_TRANSFERS)}")
    if s.mask not in MASKS:
        raise InputError(f"unknown --mask {s.mask!r}; choose from {', '.join(MASKS)}")
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
    device = resolve_device(s.device)
    model, cfg = load_model(model_dir, device=device)
    if s.mask == "learned" and not cfg.get("has_mask"):
        raise InputError("this model has no mask head (train --model hq for a learned mask); use --mask hull")
    identity = None
    if s.sign:      # load the key before hours of work, so a wrong passphrase fails now
        from provenance.keys import default_identity, load_identity

        identity = load_identity(Path(s.key_dir)) if s.key_dir else default_identity()
    src_id, dst_id = ("a", "b") if s.direction == "a2b" else ("b", "a")
    centroid = (cfg.get("identities", {}).get(src_id) or {}).get("embedding_centroid")
    centroid = None if centroid is None or s.max_distance is None else np.asarray(centroid, np.float32)
    labels_dir = Path(labels_dir) if labels_dir else default_labels_dir(out)
    masks_dir = labels_dir / "masks"
    summary = ConvertSummary(out=str(out), labels=str(labels_dir / "labels.json"))

    # one convert per output at a time: a second one would write the same segments
    with folder_lock(parts_folder(out), "veriswap convert"):
        # the work folder (finished segments) is kept across runs while these match: see swap/convert_parts.py
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
        cov = float(cfg.get("coverage", 1.0))
        pending: List[tuple] = []       # (frame, [(face record, crop)]) waiting for one batched forward
        seg_frames: List[Dict] = []     # the labels of the segment being written

        def flush(writer: VideoWriter) -> None:
            crops = [c for _, todo in pending for _, c in todo]
            results = iter(swap_crops(model, cfg, crops, s.direction))
            for fr, todo in pending:
                rgb = fr.rgb
                faces_lab = []
                applied = np.zeros(rgb.shape[:2], np.uint8)
                for f, crop in todo:
                    swapped, learned = next(results)
                    mtx = f.matrix_array()
                    pts = f.landmarks_array() @ mtx[:, :2].T + mtx[:, 2]
                    margin = int(round(f.size * (1 - cov) / 2))
                    mask = face_mask(s.mask, pts, f.size, learned, margin, s.erode, s.blur)
                    swapped = sharpen(color_transfer(s.color, swapped, crop, mask > 0.5), s.sharpen)
                    m = _paste(rgb, swapped, mask, cv2.invertAffineTransform(mtx))
                    np.maximum(applied, m, out=applied)
                    faces_lab.append({"face": f.face, "track": f.track, "box": f.box, "landmarks": f.landmarks,
                                      "mask_pixels": int((m > 127).sum())})
                entry = {"index": fr.index, "time": round(fr.time, 6), "swapped": bool(faces_lab), "faces": faces_lab}
                if faces_lab:
                    name = f"{fr.index:06d}.png"
                    write_image_atomic(masks_dir / name, applied, fsync=False)
                    entry["mask"] = f"masks/{name}"
                    summary.frames_swapped += 1
                    summary.faces_swapped += len(faces_lab)
                seg_frames.append(entry)
                writer.write(rgb)
                summary.frames += 1
                if progress:
                    progress(summary.frames, info.frames)
            pending.clear()

        writer: Optional[VideoWriter] = None
        seg = len(done)
        try:
            with torch.inference_mode():
                queued = 0
                for fr in iter_frames(video, start=len(done) * s.segment_frames):
                    if writer is None or fr.index // s.segment_frames != seg:
                        if writer is not None:
                            _finish_segment(parts, seg, writer, flush, seg_frames, summary)
                            queued = 0
                        seg = fr.index // s.segment_frames
                        writer = VideoWriter(parts.video(seg), info.width, info.height, info.fps, crf=s.crf)
                    todo = []
                    in_range = in_ranges(fr.index, ranges)
                    for f in rec.frames.get(fr.index, []):
                        if not in_range:
                            summary.faces_outside += 1
                            continue
                        if kept_crops is not None and f.file not in kept_crops:
                            summary.faces_removed += 1
                            continue
                        if centroid is not None and f.embedding is not None:
                            if np.linalg.norm(np.asarray(f.embedding, np.float32) - centroid) > s.max_distance:
                                summary.faces_skipped += 1
                                continue
                        crop = cv2.warpAffine(fr.rgb, f.matrix_array(), (f.size, f.size), flags=cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_REFLECT)
                        todo.append((f, crop))
                    pending.append((fr, todo))
                    queued += len(todo)
                    if queued >= s.batch_size or len(pending) >= 2 * s.batch_size:
                        flush(writer)
                        queued = 0
                if writer is not None:
                    _finish_segment(parts, seg, writer, flush, seg_frames, summary)
                    writer = None
        except BaseException:
            if writer is not None:      # the unfinished segment goes; the finished ones stay for the re-run
                writer.abort()
            raise

        metas = parts.done()
        if not metas:
            raise InputError(f"no frames decoded from {video}")
        frames_out = [f for m in metas for f in m["frames"]]
        unsigned = parts.folder / ("unsigned" + out.suffix.lower())
        join_segments([parts.video(m["segment"]) for m in metas], unsigned, info.fps, video)
        model_hash = "sha256:" + cfg["weights"]["sha256"]
        labels = {
            "format": LABELS_FORMAT, "version": LABELS_VERSION, "created_by": f"veriswap {__version__}",
            "source": str(video.resolve()), "output": out.name, "width": info.width, "height": info.height,
            "fps": info.fps, "direction": s.direction,
            "model": {"architecture": cfg["architecture"], "sha256": model_hash, "iteration": cfg.get("iteration"),
                      "identities": {k: (v or {}).get("name") for k, v in cfg.get("identities", {}).items()}},
            "settings": asdict(s) | {"key_dir": None},
            "counts": {"frames": summary.frames, "frames_swapped": summary.frames_swapped,
                       "faces_swapped": summary.faces_swapped, "faces_skipped": summary.faces_skipped,
                       "faces_outside_frames": summary.faces_outside,
                       "faces_not_in_faces_dir": summary.faces_removed},
            "frames": frames_out,
        }
        if s.sign:
            from provenance.c2pa_sign import SwapFacts, sign_file

            facts = SwapFacts(model_hash=model_hash, direction=s.direction,
                              identities={k: str(v) for k, v in labels["model"]["identities"].items()},
                              frames_total=summary.frames, frames_swapped=summary.frames_swapped,
                              faces_swapped=summary.faces_swapped, source=str(video),
                              model_name=cfg["architecture"], labels_file=str(labels_dir / "labels.json"),
                              swapped_frames=format_frame_ranges([f["index"] for f in frames_out if f["swapped"]]))
            res = sign_file(unsigned, out, identity, facts=facts, source=video)
            summary.manifest = res.manifest_label
            labels["c2pa_manifest"] = res.manifest_label
        else:
            os.replace(unsigned, out)
        atomic_write_bytes(labels_dir / "labels.json", json.dumps(labels, separators=(",", ":")).encode())
        parts.remove()
    summary.seconds = time.perf_counter() - t0
    return summary

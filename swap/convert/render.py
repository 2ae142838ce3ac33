"""The frame loop of convert: which faces to swap, batched swapping, compositing, and each resumable
segment's video, labels and masks."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np

from .. import alignments as A
from ..labels import in_ranges, mask_name
from ..video import VideoInfo, VideoWriter, iter_frames, write_image_atomic
from .color import color_transfer
from .composite import _paste, sharpen
from .masks import face_mask
from .parts import Parts
from .settings import TOTALS, ConvertSettings, ConvertSummary


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

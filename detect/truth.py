"""A score timeline against the labels `veriswap convert` wrote beside a video (OUT.labels/labels.json).

On a partial swap (`convert --frames`) this says how well the detector's per-frame probabilities
*localise* the swapped frames, not only whether the video is fake: frame AUC over the sampled frames,
and the flagged frames (probability >= threshold) against the swapped ones (precision, recall, IoU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

from swap.labels import Labels, as_labels, format_frame_ranges

from . import metrics as M


@dataclass
class GroundTruth:
    labels: str                     # the labels file compared with
    swapped_frames: str             # every frame the labels call swapped, as ranges ("40-79")
    frames: int                     # sampled frames with a face score
    swapped: int                    # of them, swapped according to the labels
    flagged: int                    # of them, at or above the detector's threshold
    frame_auc: Optional[float]      # None when the sampled frames are all swapped or all real
    precision: Optional[float]      # flagged frames that are swapped (None: nothing flagged)
    recall: Optional[float]         # swapped frames that are flagged (None: nothing swapped)
    iou: Optional[float]            # |flagged & swapped| / |flagged | swapped| (None: both empty)


def swapped_indices(labels: Union[Labels, Dict]) -> List[int]:
    return as_labels(labels).swapped_indices()


def compare(timeline: Sequence, labels: Union[Labels, Dict], threshold: float, labels_path: str) -> GroundTruth:
    """`timeline`: FrameScore-like items (index, prob or None for a frame without a face); `labels`: the
    labelled-swap record (swap.labels; a plain dict of its JSON is read as one)."""
    swapped = set(swapped_indices(labels))
    scored = [(fr.index in swapped, float(fr.prob)) for fr in timeline if fr.prob is not None]
    y = [int(s) for s, _ in scored]
    p = [q for _, q in scored]
    tp = sum(1 for s, q in scored if s and q >= threshold)
    flagged = sum(1 for q in p if q >= threshold)
    pos = sum(y)
    union = flagged + pos - tp
    r = lambda v: None if v is None else round(float(v), 6)  # noqa: E731
    return GroundTruth(labels_path, format_frame_ranges(sorted(swapped)), len(scored), pos, flagged,
                       r(M.auc(y, p)), r(tp / flagged if flagged else None), r(tp / pos if pos else None),
                       r(tp / union if union else None))

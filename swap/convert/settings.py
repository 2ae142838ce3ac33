"""What convert is asked to do (`ConvertSettings`, with its checks) and what it reports (`ConvertSummary`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from ..errors import InputError
from ..labels import parse_frame_ranges
from .color import COLOR_TRANSFERS
from .masks import MASKS


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


TOTALS = ("frames", "frames_swapped", "faces_swapped", "faces_skipped", "faces_outside", "faces_removed")


def output_settings(s: ConvertSettings) -> Dict:
    """The settings that decide the output's pixels and labels (not where the work runs, the batch size
    or who signs): what a resumed segment or a skipped batch item must agree on."""
    return {k: v for k, v in asdict(s).items() if k not in ("key_dir", "device", "batch_size", "sign")}

"""What extract is asked to do (`ExtractSettings`, with its checks) and what it reports (`ExtractSummary`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List, Optional

from .. import faces as F
from ..errors import InputError


@dataclass
class ExtractSettings:
    detector: str = "hog"
    upsample: int = 1
    size: int = F.DEFAULT_SIZE
    padding: float = F.DEFAULT_PADDING
    every: int = 1
    detect_every: int = 5       # video: re-detect each tracked face (in a region around it) every N processed frames
    scan_every: int = 25        # video: full-frame detection for new faces every N processed frames (and on cuts)
    embed_every: int = 25       # video: refresh a track's embedding every N processed frames
    smooth: bool = True
    min_cutoff: float = 4.0     # One-Euro filter (Hz): lower = smoother, more lag
    beta: float = 1.0
    min_size: int = F.MIN_FACE
    max_distance: float = 0.6   # with a reference face: keep faces closer than this
    ref: Optional[str] = None   # sha256 of the reference embedding (set by `extract`)
    refeed: int = 1             # landmark fits averaged per face (faceswap's --re-feed)

    def check(self) -> None:
        """The settings' ranges (InputError naming the option), before any work."""
        F.DETECTORS.lookup(self.detector)
        if not 32 <= self.size <= 1024:
            raise InputError(f"--size must be between 32 and 1024, got {self.size}")
        if self.every < 1 or self.detect_every < 1 or self.embed_every < 1 or self.scan_every < 1:
            raise InputError("--every, --detect-every, --scan-every and --embed-every must be >= 1")
        if not 1 <= self.refeed <= 32:
            raise InputError(f"--re-feed must be 1..32, got {self.refeed}")

    def output_key(self) -> dict:
        """Settings that change what is written: a resume must match them."""
        d = asdict(self)
        if d["ref"] is None:
            d.pop("max_distance")
        if d["refeed"] == 1:        # folders extracted before the option existed resume as they are
            d.pop("refeed")
        return d


@dataclass
class ExtractSummary:
    sources: int = 0
    frames_read: int = 0
    frames_resumed: int = 0       # frames skipped because an earlier run already did them
    faces_found: int = 0
    faces_written: int = 0
    faces_filtered: int = 0       # dropped by --ref-face
    frames_no_face: int = 0
    seconds: float = 0.0
    alignments: str = ""
    faces_dir: str = ""
    warnings: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0

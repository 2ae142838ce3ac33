"""Which videos belong together (the unit a dataset split never cuts): by content, not by path.

A copied clip has another path but the same frames; a swap made by another tool has no veriswap labels
naming its source, yet every frame outside the face is its source's. So videos are grouped by:

1. a **fingerprint of decoded frames**: 8 evenly spaced frames, grey, 32 x 24 px (`content_fingerprint`).
   Two videos with the same frame count whose thumbnails differ by less than `SAME_CONTENT` grey levels
   (mean absolute difference, 0-255) show the same footage. Measured on 16-frame 640x480 clips of the
   built-in faces: a graphic swap vs its source 1.4, the same swap re-encoded at CRF 40 + 0.5x 3.9,
   different clips 69-75 (another person with the same motion, or the mirror image);
2. the **source a swap records**: convert / graphic labels (`source`), or the title of the C2PA `parentOf`
   ingredient of a signed swap (a file name: used when exactly one input video has that name);
3. a **CSV** (`--sources FILE`) for anything else: `fake,source[,identity]` rows, paths relative to the
   CSV's folder; `identity` (optional) names the person swapped in (a photo, or a built-in / wheel name).

Groups are the connected components of those links (union-find), named after their first member.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from swap.errors import InputError

THUMB = (32, 24)
FRAMES = 8
SAME_CONTENT = 10.0         # mean |grey difference| (0-255) below which two clips show the same footage


def content_fingerprint(path: Path, frames: int = FRAMES) -> dict:
    """{"frames": total frame count, "thumbs": k x 24 x 32 uint8 grey thumbnails of k evenly spaced frames
    (as nested lists), "sha": hash of the thumbnails} of a video. ~0.06 s for a 16-frame 640x480 clip."""
    import cv2

    from swap.video import iter_frames, probe

    from .crops import evenly_spaced

    n = probe(Path(path)).frames
    pick = evenly_spaced(range(max(n, 1)), frames)
    thumbs = []
    for fr in iter_frames(Path(path), select=set(pick).__contains__):
        g = cv2.cvtColor(fr.rgb, cv2.COLOR_RGB2GRAY)
        thumbs.append(cv2.resize(g, THUMB, interpolation=cv2.INTER_AREA))
    arr = np.stack(thumbs) if thumbs else np.zeros((0, THUMB[1], THUMB[0]), np.uint8)
    return {"frames": int(n), "thumbs": arr.tolist(), "sha": hashlib.sha256(arr.tobytes()).hexdigest()[:16]}


def content_distance(a: dict, b: dict) -> Optional[float]:
    """Mean absolute grey difference of two fingerprints' thumbnails; None when they cannot be compared
    (different frame counts or thumbnail counts)."""
    if a.get("frames") != b.get("frames"):
        return None
    x, y = np.asarray(a.get("thumbs", []), np.float32), np.asarray(b.get("thumbs", []), np.float32)
    if x.shape != y.shape or x.size == 0:
        return None
    return float(np.abs(x - y).mean())


@dataclass
class SourceRow:
    fake: str                       # resolved path
    source: Optional[str]           # resolved path (None: the row names only the identity)
    identity: Optional[str]         # photo path or known name of the person swapped in


def read_sources_csv(path: Path) -> Dict[str, SourceRow]:
    """`fake,source[,identity]` rows (a header row naming `fake` is allowed); paths relative to the CSV.
    Keyed by the fake's resolved path."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such sources CSV: {path}")
    out: Dict[str, SourceRow] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for k, row in enumerate(csv.reader(f), 1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            if k == 1 and row[0].lower() == "fake":
                continue
            if len(row) < 2:
                raise InputError(f"{path}:{k}: expected fake,source[,identity], got {','.join(row)!r}")

            def res(p: str) -> Optional[str]:
                if not p:
                    return None
                q = Path(p) if Path(p).is_absolute() else path.parent / p
                return str(q.resolve())
            fake = res(row[0])
            if fake is None:
                raise InputError(f"{path}:{k}: the fake's path is empty")
            ident = row[2] if len(row) > 2 and row[2] else None
            if ident and ("/" in ident or "." in Path(ident).name) and not Path(ident).is_absolute():
                cand = path.parent / ident
                ident = str(cand.resolve()) if cand.exists() else ident
            out[fake] = SourceRow(fake, res(row[1]), ident)
    return out


def c2pa_parent_title(path: Path) -> Optional[str]:
    """The title (a file name) of a signed video's C2PA `parentOf` ingredient, or None (unsigned, unreadable,
    or no c2pa installed)."""
    try:
        from provenance.c2pa_verify import verify_file

        rep = verify_file(Path(path))
    except Exception:  # noqa: BLE001 - no manifest / unreadable: there is simply no recorded source
        return None
    for i in rep.ingredients or []:
        if i.get("relationship") == "parentOf" and i.get("title"):
            return str(i["title"])
    return None


class _UnionFind:
    def __init__(self, items: Iterable[str]):
        self.parent = {x: x for x in items}

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class Link:
    a: str
    b: str
    why: str                        # "same content (d=1.4)", "labels source", "C2PA ingredient", "sources CSV"


def group_by_content(ids: Sequence[str], fingerprints: Dict[str, dict], explicit: Sequence[Tuple[str, str, str]] = (),
                     same_content: float = SAME_CONTENT) -> Tuple[Dict[str, str], List[Link]]:
    """Groups of video ids: linked when their fingerprints say same footage, or by an explicit (a, b, why)
    link (labels source, C2PA ingredient, CSV). Returns ({id: group name}, the links used)."""
    uf = _UnionFind(ids)
    links: List[Link] = []
    for a, b, why in explicit:
        if a in uf.parent and b in uf.parent:
            uf.union(a, b)
            links.append(Link(a, b, why))
    ordered = sorted(ids)
    for i, a in enumerate(ordered):
        fa = fingerprints.get(a)
        if not fa:
            continue
        for b in ordered[i + 1:]:
            fb = fingerprints.get(b)
            if not fb:
                continue
            d = content_distance(fa, fb)
            if d is not None and d < same_content:
                if uf.find(a) != uf.find(b):
                    links.append(Link(a, b, f"same content (mean grey difference {d:.1f})"))
                uf.union(a, b)
    return {x: uf.find(x) for x in ids}, links

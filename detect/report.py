"""Score reports: per video a timeline CSV (one row per face per sampled frame, or an empty row for a
frame without a face), a timeline PNG (probability of fake over time per face track, with the
threshold, and the frames convert's labels call swapped shaded), the full JSON, and Grad-CAM heatmaps
of each track's most suspicious frames (`NAME.heatmaps/track{T}_frame{F}.png`: the crop beside it with
the heatmap over it)."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Dict, List

from provenance.fsutil import atomic_write_bytes
from swap.video import write_image_atomic

from .explain import overlay
from .score import VideoScore


def timeline_csv(vs: VideoScore) -> str:
    rows = ["frame,time,track,prob,x0,y0,x1,y1"]
    for fr in vs.timeline:
        if not fr.faces:
            rows.append(f"{fr.index},{fr.time},,,,,,")
        for f in fr.faces:
            rows.append(f"{fr.index},{fr.time},{f.track},{f.prob:.6f}," + ",".join(f"{v:.1f}" for v in f.box))
    return "\n".join(rows) + "\n"


def timeline_png(vs: VideoScore) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
    tracks: Dict[int, List[tuple]] = {}
    for fr in vs.timeline:
        for f in fr.faces:
            tracks.setdefault(f.track, []).append((fr.time, f.prob))
    for tid, pts in sorted(tracks.items()):
        t, p = zip(*pts)
        ax.plot(t, p, marker="o", ms=3, label=f"face track {tid}")
    gt = vs.ground_truth
    fps = vs.fps or 25.0
    if gt is not None and gt.swapped_frames:     # shade what the labels say was swapped
        for n, part in enumerate(gt.swapped_frames.split(",")):
            lo, _, hi = part.partition("-")
            ax.axvspan(int(lo) / fps, (int(hi or lo) + 1) / fps, color="orange", alpha=0.2, lw=0,
                       label=None if n else "swapped (labels)")
    ax.axhline(vs.threshold, color="red", ls="--", lw=1, label=f"threshold {vs.threshold:.2f}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(fake)")
    ax.set_title(f"{Path(vs.path).name}: {vs.verdict.upper()} (score {vs.score:.2f}, rule {vs.rule})")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_report(scores: List[VideoScore], folder: Path) -> List[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    used: Dict[str, int] = {}
    for vs in scores:
        stem = Path(vs.path).stem
        used[stem] = used.get(stem, 0) + 1
        name = stem if used[stem] == 1 else f"{stem}_{used[stem]}"
        d = vs.to_dict()
        for h, meta in zip(vs.heatmaps, d["heatmaps"]):
            rel = f"{name}.heatmaps/track{h.track}_frame{h.frame:06d}.png"
            (folder / rel).parent.mkdir(exist_ok=True)
            write_image_atomic(folder / rel, overlay(h.crop, h.cam), fsync=False)
            meta["file"] = rel
            written.append(folder / rel)
        files = [(".json", json.dumps(d, indent=2).encode())]
        if vs.judged:               # a video that could not be judged has no timeline: its JSON says why
            files += [(".timeline.csv", timeline_csv(vs).encode()), (".timeline.png", timeline_png(vs))]
        for suffix, data in files:
            p = folder / f"{name}{suffix}"
            atomic_write_bytes(p, data, fsync=False)
            written.append(p)
    summary = [{"path": vs.path, "verdict": vs.verdict, "score": vs.score, "judged": vs.judged, "reason": vs.reason}
               for vs in scores]
    atomic_write_bytes(folder / "summary.json", json.dumps(summary, indent=2).encode(), fsync=False)
    return written

"""Swap quality on real labelled swaps: the old rule and swap.quality side by side, per video and per method.

old rule: the train identity check before swap.quality: a swapped face succeeds when its dlib embedding
          (`FaceAnalyzer.embed_crop`) is closer to the identity swapped in (B) than to the person it
          replaced (A). A skin-coloured blur passes it.
ours:     `swap.quality.measure_face`: ID retrieval (nearest identity among every identity known, B
          expected), dlib distance to B < 0.6, pose (yaw/roll) and expression error against the original
          frame's face, detail index >= 0.15 (a blur fails), inner-face fine detail >= 0.49 of the original
          frame's face at the same place (an autoencoder's skin-coloured blob fails).

Input: labelled swaps (`convert` / `graphic-swap` outputs: OUT.mp4 + OUT.labels/labels.json), the original
clip each was made from (the labels' `source`, else ROOT/real_test/A.mp4) and a photo of each person
(ROOT/photos/NAME.png, else the graphic swap's own source photo, else the built-in identity of that name,
else the faces of the original clip), as `python -m bench.detect_recipe -o ROOT` leaves them. Swaps are
ROOT/fake*test*/*.mp4 (else ROOT/*.mp4); B and A come from the labels (model identities and direction).

Each swapped face is cut from the swap and from the original frame with the same alignment (the labels'
landmarks, 256 px), so swap and source are in the same framing. The gallery: every photo, every identity
of the swaps, and the built-in identities that are not one of them (`Gallery.add_distractors`).
Figures are medians over faces; pass rates are shares of faces; seconds are each rule's own measuring time
(decoding and alignment, shared, are counted apart).

    python -m bench.swap_quality ROOT [--max-faces 16] [--json OUT.json]
    python bench/detect.py --quality ROOT
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CROP = 256


@dataclass
class Swap:
    video: Path
    labels: object                      # swap.labels.Labels
    method: str
    target: str                         # B: the identity swapped in (what the face should show)
    original: str                       # A: the person it replaced
    source_video: Optional[Path]        # the original clip


@dataclass
class VideoResult:
    video: str
    method: str
    target: str
    original: str
    faces: list = field(default_factory=list)          # swap.quality.FaceQuality
    old: List[bool] = field(default_factory=list)      # the old rule per face
    skipped: int = 0                                   # faces dlib could not read at all
    seconds_ours: float = 0.0
    seconds_old: float = 0.0
    seconds_read: float = 0.0


# ---- the material -------------------------------------------------------------------------------------

def find_swaps(root: Path) -> List[Path]:
    """Labelled swap videos: ROOT itself, ROOT/fake*test*/*.mp4, else ROOT/*.mp4."""
    from swap.labels import find_labels

    root = Path(root)
    if root.is_file():
        return [root]
    for pattern in ("fake*test*/*.mp4", "*.mp4"):
        found = [p for p in sorted(root.glob(pattern)) if find_labels(p)]
        if found:
            return found
    return []


def method_name(labels) -> str:
    """The labels' method: 'graphic-faceswap alpha/lab' (blend, colour) or 'autoencoder original'."""
    model, settings = labels.model or {}, labels.settings or {}
    arch = model.get("architecture") or "unlabelled"
    if model.get("source_face") is not None or "blend" in settings:
        return f"{arch} {settings.get('blend', '?')}/{settings.get('color', '?')}"
    return f"autoencoder {arch}"


def describe(video: Path, root: Path) -> Swap:
    from swap.errors import InputError
    from swap.labels import find_labels, read_labels

    lp = find_labels(video)
    if lp is None:
        raise InputError(f"no labels beside {video} (OUT.labels/labels.json)")
    lab = read_labels(lp)
    model = lab.model or {}
    ids = model.get("identities") or {}
    a, b = ids.get("a"), ids.get("b")
    original, target = (b, a) if lab.direction == "b2a" else (a, b)
    target = target or (model.get("source_face") or {}).get("name")
    if not target or not original:
        raise InputError(f"{lp}: the labels name no identities (model.identities)")
    src = Path(lab.source) if lab.source else None
    if src is None or not src.is_file():
        cands = sorted(Path(root).glob(f"real*/{original}.mp4")) if Path(root).is_dir() else []
        src = cands[0] if cands else None
    return Swap(Path(video), lab, method_name(lab), target, original, src)


def swapped_faces(sw: Swap, max_faces: int) -> List[Tuple[int, object]]:
    """(frame index, FaceLabel) of up to `max_faces` swapped faces with landmarks, evenly spaced."""
    faces = [(fr.index, f) for fr in sw.labels.frames if fr.swapped for f in fr.faces if f.landmarks]
    if max_faces and len(faces) > max_faces:
        faces = [faces[int(i * len(faces) / max_faces)] for i in range(max_faces)]
    return faces


def face_pairs(sw: Swap, max_faces: int, size: int = CROP) -> Iterator[Tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(frame, swap crop, original crop, the labels' landmarks) with one alignment for both frames."""
    from swap.errors import InputError
    from swap.faces import align_matrix, warp_crop
    from swap.video import iter_frames

    if sw.source_video is None:
        raise InputError(f"{sw.video.name}: the original clip is not found (labels' source, real*/A.mp4)")
    want: Dict[int, list] = {}
    for i, f in swapped_faces(sw, max_faces):
        want.setdefault(i, []).append(np.asarray(f.landmarks, np.float32))
    sel = want.__contains__
    stop = max(want) + 1 if want else 0
    for fs, fo in zip(iter_frames(sw.video, select=sel, stop=stop), iter_frames(sw.source_video, select=sel, stop=stop)):
        if fs.index != fo.index:
            raise InputError(f"{sw.video.name}: frame {fs.index} has no frame in {sw.source_video}")
        for pts in want[fs.index]:
            m = align_matrix(pts, size)
            yield fs.index, warp_crop(fs.rgb, m, size), warp_crop(fo.rgb, m, size), pts


# ---- the gallery --------------------------------------------------------------------------------------

def photo_embedding(path: Path, fa) -> Optional[np.ndarray]:
    from swap.video import read_image

    faces = fa.analyze(read_image(Path(path)), size=150, embed=True)
    return faces[0].embedding if faces else None


def clip_embeddings(sw: Swap, fa, n: int = 4) -> List[np.ndarray]:
    """The replaced person's dlib embeddings from the original clip (aligned by the labels, n frames)."""
    out = [fa.embed_crop(orig) for _, _, orig, _ in face_pairs(sw, n)]
    return [e for e in out if e is not None]


def build_gallery(root: Path, swaps: Sequence[Swap], fa):
    """Every photo (ROOT/photos/*), each swap's people (photo, graphic source photo, built-in identity or
    original clip) and the built-in identities that are none of them, as distractors."""
    from swap.quality import Gallery, builtin_gallery

    g, builtin = Gallery(), builtin_gallery()
    photos = {p.stem: p for p in sorted(Path(root).glob("photos/*")) if p.is_file()} if Path(root).is_dir() else {}
    for sw in swaps:
        sf = (sw.labels.model or {}).get("source_face") or {}
        if sf.get("name") and sf.get("path") and Path(sf["path"]).is_file():
            photos.setdefault(sf["name"], Path(sf["path"]))
    for name, p in photos.items():           # a photo HOG finds no face in: the built-in identity of its name
        e = photo_embedding(p, fa)
        g.add(name, [e] if e is not None else builtin.embeddings.get(name, []))
    for sw in swaps:
        for name in (sw.target, sw.original):
            if name in g.names:
                continue
            if name in builtin.names:
                g.add(name, builtin.embeddings[name])
            elif name == sw.original:
                g.add(name, clip_embeddings(sw, fa))
    g.add_distractors(builtin)
    return g


# ---- measuring ----------------------------------------------------------------------------------------

def measure_video(sw: Swap, gallery, fa=None, max_faces: int = 16, thresholds=None) -> VideoResult:
    """Both rules on up to `max_faces` swapped faces of one video (0: every swapped face)."""
    from swap import faces as F
    from swap.quality import measure_face

    fa = fa or F.FaceAnalyzer()
    r = VideoResult(f"{sw.video.parent.name}/{sw.video.stem}", sw.method, sw.target, sw.original)
    cb, ca = gallery.centroid(sw.target), gallery.centroid(sw.original)
    t = time.perf_counter()
    for _, swap_crop, orig_crop, _ in face_pairs(sw, max_faces):
        t0 = time.perf_counter()
        r.seconds_read += t0 - t
        try:
            q = measure_face(swap_crop, orig_crop, sw.target, gallery, thresholds, fa)
        except Exception:  # noqa: BLE001 - a face dlib cannot read at all is counted, not measured
            r.skipped += 1
            t = time.perf_counter()
            continue
        t1 = time.perf_counter()
        e = fa.embed_crop(swap_crop)
        old = e is not None and F.distance(e, cb) < F.distance(e, ca)
        t = time.perf_counter()
        r.faces.append(q)
        r.old.append(bool(old))
        r.seconds_ours += t1 - t0
        r.seconds_old += t - t1
    return r


def run(root: Path, max_faces: int = 16, log=print) -> Tuple[List[VideoResult], object]:
    from swap.faces import FaceAnalyzer

    fa = FaceAnalyzer()
    swaps = [describe(v, root) for v in find_swaps(root)]
    if not swaps:
        from swap.errors import InputError
        raise InputError(f"no labelled swaps in {root} (fake*test*/*.mp4 or *.mp4 with OUT.labels/)")
    t = time.perf_counter()
    gallery = build_gallery(root, swaps, fa)
    log(f"gallery: {len(gallery.names)} identities ({time.perf_counter() - t:.1f} s); {len(swaps)} swap videos")
    results = []
    for sw in swaps:
        r = measure_video(sw, gallery, fa, max_faces)
        results.append(r)
        log(format_row(r.video, [r]))
    return results, gallery


# ---- the table ----------------------------------------------------------------------------------------

def _median(vs) -> float:
    vs = [v for v in vs if v is not None and not math.isnan(v)]
    return statistics.median(vs) if vs else float("nan")


def summary(results: Sequence[VideoResult]) -> dict:
    faces = [q for r in results for q in r.faces]
    old = [o for r in results for o in r.old]
    n = len(faces)
    share = (lambda xs: sum(xs) / len(xs) if xs else float("nan"))  # noqa: E731
    return {"videos": len(results), "faces": n, "skipped": sum(r.skipped for r in results),
            "old_pass": share(old), "id_retrieval": share([q.retrieved for q in faces]),
            "same_person": share([q.same_person for q in faces]),
            "distance": _median([q.distance for q in faces]), "pose": _median([q.pose_error for q in faces]),
            "expression": _median([q.expression_error for q in faces]),
            "detail": _median([q.sharpness for q in faces]),
            "detail_vs_source": _median([q.detail_vs_source for q in faces]),
            "pass": share([q.passed for q in faces]),
            "seconds_old": sum(r.seconds_old for r in results), "seconds_ours": sum(r.seconds_ours for r in results),
            "seconds_read": sum(r.seconds_read for r in results)}


HEADER = (f"{'':60s} {'faces':>5s} | {'old rule':>8s} | {'ID retr':>7s} {'dist B':>6s} {'pose':>5s} "
          f"{'expr':>6s} {'detail':>6s} {'vs src':>6s} {'quality':>7s} | {'s old':>6s} {'s ours':>6s}")


def format_row(name: str, results: Sequence[VideoResult]) -> str:
    s = summary(results)
    pct = (lambda v: "   n/a" if math.isnan(v) else f"{100 * v:5.0f}%")  # noqa: E731
    skipped = f"  ({s['skipped']} unreadable)" if s["skipped"] else ""
    return (f"{name[-60:]:60s} {s['faces']:5d} | {pct(s['old_pass']):>8s} | {pct(s['id_retrieval']):>7s} "
            f"{s['distance']:6.2f} {s['pose']:5.1f} {s['expression']:6.3f} {s['detail']:6.2f} "
            f"{s['detail_vs_source']:6.2f} "
            f"{pct(s['pass']):>7s} | {s['seconds_old']:6.1f} {s['seconds_ours']:6.1f}{skipped}")


FAILURES = (("nearest identity", "not retrieved"), ("dlib distance", "distance >= 0.6"), ("pose", "pose"),
            ("expression", "expression"), ("detail", "detail (blur)"),
            ("relative detail", "relative detail (blob)"))


def failure_shares(results: Sequence[VideoResult]) -> Dict[str, float]:
    """Share of faces failing each criterion of swap.quality (a face can fail several)."""
    faces = [q for r in results for q in r.faces]
    return {label: sum(any(f.startswith(key) for f in q.failures) for q in faces) / max(len(faces), 1)
            for key, label in FAILURES}


def table(results: Sequence[VideoResult]) -> List[str]:
    lines = [HEADER, "per swap video (B = the identity swapped in):"]
    lines += [format_row(r.video, [r]) for r in results]
    lines.append("per method:")
    methods = sorted({r.method for r in results})
    for m in methods:
        rs = [r for r in results if r.method == m]
        lines.append(format_row(f"{m} ({len(rs)} videos)", rs))
    lines.append("swap.quality failures per method (share of faces failing each criterion):")
    for m in methods:
        fs = failure_shares([r for r in results if r.method == m])
        lines.append(f"  {m}: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in fs.items()))
    return lines


def to_json(results: Sequence[VideoResult], gallery) -> dict:
    return {"gallery": gallery.names,
            "videos": [dict(summary([r]), video=r.video, method=r.method, target=r.target, original=r.original)
                       for r in results],
            "methods": {m: dict(summary([r for r in results if r.method == m]),
                                failures=failure_shares([r for r in results if r.method == m]))
                        for m in sorted({r.method for r in results})}}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--max-faces", type=int, default=16, help="swapped faces measured per video (0: all)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")


def report(root: Path, max_faces: int = 16, json_out: Optional[Path] = None) -> List[VideoResult]:
    import os
    import platform

    print(f"swap quality of {root}: machine {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print("old rule: dlib distance to B < distance to A; quality: swap.quality (ID retrieval, dist B < 0.6, "
          "pose <= 10 deg, expr <= 0.10 IOD, detail >= 0.15, vs src: inner detail >= 0.49 of the original's); "
          "dist/pose/expr/detail/vs src: medians")
    t = time.perf_counter()
    results, gallery = run(root, max_faces, log=lambda s: None)
    for line in table(results):
        print(line)
    s = summary(results)
    print(f"{len(results)} videos, {s['faces']} faces in {time.perf_counter() - t:.1f} s (decode + align "
          f"{s['seconds_read']:.1f} s); gallery of {len(gallery.names)} identities")
    if json_out:
        Path(json_out).write_text(json.dumps(to_json(results, gallery), indent=1))
    return results


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="a recipe folder (fake*test/, real_test/, photos/) or a labelled swap")
    add_arguments(ap)
    a = ap.parse_args(argv)
    report(a.root, a.max_faces, a.json)


if __name__ == "__main__":
    main()

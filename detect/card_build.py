"""Building a detector's model card (detect.card has the record and the measures): the identities in the
clips (given, or found from the faces), degraded copies of the held-out videos, scoring them under each
condition, and `build_card`, which puts it together. detect.card re-exports these names.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from swap.errors import InputError
from swap.video import atomic_write_bytes

from .card import (CONDITIONS, ModelCard, VideoResult, condition_result, ece, false_positives,
                   method_family)


# ---- identities ----------------------------------------------------------------------------------

def _video_embedding(root: Path, files: Sequence[str], analyzer, k: int = 3) -> Optional[np.ndarray]:
    import cv2

    es = []
    for rel in list(files)[:: max(1, len(files) // k)][:k]:
        bgr = cv2.imread(str(Path(root) / rel), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        faces = analyzer.analyze(np.ascontiguousarray(bgr[..., ::-1]), size=150, embed=True)
        if faces:
            es.append(faces[0].embedding)
    return np.mean(es, 0) if es else None


def find_identities(entries: Sequence[Tuple[Path, object, List[str]]], same_person: float = 0.6,
                    identity_of: Optional[Callable[[object], Optional[List[str]]]] = None) -> Dict[str, List[str]]:
    """Identity names per video id. `entries`: (dataset root, VideoEntry, its crop files). `identity_of(entry)`
    (the caller knows who is in each clip) or a video's `identities` / `identity` field wins; otherwise
    clustering as the module doc says (dlib at 0.6 merges some look-alikes: measured, two people of the
    insightface group photo fell into one cluster)."""
    from swap import faces as F
    from swap.quality import builtin_gallery

    fa = F.FaceAnalyzer()
    named = builtin_gallery()
    clusters: List[Tuple[str, List[np.ndarray]]] = []
    out: Dict[str, List[str]] = {}
    emb: Dict[str, Optional[np.ndarray]] = {}

    def explicit(v) -> Optional[List[str]]:
        x = (identity_of(v) if identity_of else None) or getattr(v, "identities", None) or getattr(v, "identity", None)
        return [x] if isinstance(x, str) else (list(x) if x else None)

    def nearest(e: np.ndarray) -> Tuple[Optional[int], float]:
        best, bd = None, math.inf
        for i, (_, es) in enumerate(clusters):
            d = F.distance(e, np.mean(es, 0))
            if d < bd:
                best, bd = i, d
        return best, bd

    order = sorted(entries, key=lambda t: (t[1].label, t[1].id))        # reals first
    for root, v, files in order:
        ex = explicit(v)
        if ex:
            out[v.id] = ex
            continue
        e = emb[v.id] = _video_embedding(root, files, fa)
        if e is None:
            out[v.id] = []
            continue
        i, d = nearest(e)
        if v.label == 0:
            if i is None or d >= same_person:
                nm, nd = named.nearest(e) if named.names else (None, math.inf)
                taken = {c[0] for c in clusters}
                name = nm if nm is not None and nd < 0.5 and nm not in taken else f"person-{len(clusters) + 1}"
                clusters.append((name, [e]))
                i = len(clusters) - 1
            else:
                clusters[i][1].append(e)
            out[v.id] = [clusters[i][0]]
        else:
            out[v.id] = [clusters[i][0]] if i is not None and d < same_person else []
    by_group: Dict[str, set] = {}
    for _, v, _ in entries:
        if v.label == 0:
            by_group.setdefault(v.group, set()).update(out.get(v.id, []))
    for _, v, _ in entries:
        if v.label == 1 and not explicit(v):
            out[v.id] = sorted(set(out.get(v.id, [])) | by_group.get(v.group, set()))
    return out


# ---- degraded copies of the held-out videos ---------------------------------------------------------

def degrade_video(src: Path, dst: Path, crf: int, scale: float) -> Path:
    """H.264 copy of `src` at `crf`, resized by `scale`, frame for frame; a convert/graphic output's labels
    are copied beside it with boxes and landmarks scaled, so the same faces stay labelled."""
    import cv2

    from swap.video import VideoWriter, iter_frames, probe

    info = probe(src)
    w, h = max(2, int(round(info.width * scale / 2)) * 2), max(2, int(round(info.height * scale / 2)) * 2)
    with VideoWriter(dst, w, h, info.fps, crf=crf) as wr:
        for fr in iter_frames(src):
            img = fr.rgb if (w, h) == (info.width, info.height) else \
                cv2.resize(fr.rgb, (w, h), interpolation=cv2.INTER_AREA)
            wr.write(np.ascontiguousarray(img))
    lab = Path(src).with_name(Path(src).stem + ".labels") / "labels.json"
    if lab.is_file():
        d = json.loads(lab.read_bytes())
        kx, ky = w / info.width, h / info.height
        for fr in d.get("frames", []):
            for face in fr.get("faces", []) or []:
                if face.get("box"):
                    b = face["box"]
                    face["box"] = [b[0] * kx, b[1] * ky, b[2] * kx, b[3] * ky] + list(b[4:])
                if face.get("landmarks"):
                    face["landmarks"] = [[x * kx, y * ky] for x, y in face["landmarks"]]
        out = Path(dst).with_name(Path(dst).stem + ".labels")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "labels.json", json.dumps(d).encode())
    return Path(dst)


# ---- building the card --------------------------------------------------------------------------

def _score_samples(root: Path, samples, det, batch_size: int) -> Dict[str, List[float]]:
    import cv2

    out: Dict[str, List[float]] = {}
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        crops = []
        for s in chunk:
            bgr = cv2.imread(str(Path(root) / s.file), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(f"cannot read crop {s.file}")
            crops.append(bgr[..., ::-1])
        for s, p in zip(chunk, det.predict(crops, batch_size)):
            out.setdefault(s.video, []).append(float(p))
    return out


def _results(videos, scores: Dict[str, List[float]], idents: Dict[str, List[str]]) -> List[VideoResult]:
    return [VideoResult(v.id, v.label, float(np.mean(scores[v.id])) if scores.get(v.id) else None,
                        scores.get(v.id, []), v.method if v.label == 1 else None, idents.get(v.id, []))
            for v in videos]


def _degraded_scores(videos, settings: dict, condition: str, det, workdir: Path, batch_size: int
                     ) -> Dict[str, List[float]]:
    """Re-encode the held-out videos for `condition`, crop them like the dataset did, score: {video id: probs}."""
    from . import dataset as D

    crf, scale = CONDITIONS[condition]
    vdir = workdir / condition / "videos"
    names, real, fake = {}, [], []
    for v in videos:
        dst = vdir / f"{v.id}.mp4"
        degrade_video(Path(v.path), dst, crf, scale)
        names[str(dst.resolve())] = v.id
        (fake if v.label == 1 else real).append(dst)
    s = D.DatasetSettings(frames=int(settings.get("frames", 32)), size=int(settings.get("size", 256)),
                          scale=float(settings.get("scale", 1.3)), detector=str(settings.get("detector", "hog")))
    try:
        D.build_dataset(real, fake, workdir / condition / "ds", s)
    except InputError:
        return {}                       # no face found in any degraded video: none judged
    ds = D.load(workdir / condition / "ds")
    raw = _score_samples(ds.root, ds.samples, det, batch_size)
    return {names[str(Path(ds.videos[k].path).resolve())]: p for k, p in raw.items()}


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _split_counts(d, vids) -> dict:
    out: Dict[str, dict] = {}
    for sp in ("train", "val"):
        vs = [v for v in vids if v.split == sp]
        ids = {v.id for v in vs}
        smp = [s for s in d.samples if s.video in ids]
        out[sp] = {"real_videos": sum(v.label == 0 for v in vs), "fake_videos": sum(v.label == 1 for v in vs),
                   "real_frames": sum(s.label == 0 for s in smp), "fake_frames": sum(s.label == 1 for s in smp)}
    return out


def _held_out(ds, tds, split: str, left_out: List[str], splits: Sequence[str]) -> Tuple[list, list]:
    """(the videos trained on, the held-out videos measured)."""
    train_v = [v for v in tds.videos.values() if v.split in ("train", "val")
               and not (v.label == 1 and (v.method in left_out or method_family(v.method) in left_out))]
    ev = [v for v in ds.videos.values() if v.samples and (split == "all" or v.split == split)]
    if split != "all" and split not in splits:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(splits)}, all")
    if not ev:
        raise InputError(f"the dataset has no {split} videos")
    same = tds.root.resolve() == ds.root.resolve()
    if not same:        # a foreign eval set: its videos are held out whatever split they sit in
        train_ids = {v.id for v in train_v}
        ev = [v for v in ev if v.id not in train_ids]
    return train_v, ev


def _all_identities(tds, ds, train_v, ev, identity_of) -> Dict[str, List[str]]:
    files: Dict[Tuple[str, str], List[str]] = {}
    for d in ({tds.root: tds, ds.root: ds}).values():
        for s in d.samples:
            files.setdefault((str(d.root), s.video), []).append(s.file)
    entries = [(tds.root, v, files.get((str(tds.root), v.id), [])) for v in train_v] + \
              [(ds.root, v, files.get((str(ds.root), v.id), [])) for v in ev]
    return find_identities(entries, identity_of=identity_of)


def _measure_conditions(ds, ev, det, conditions: Sequence[str], idents, seen_ids, seen_methods,
                        workdir: Optional[Path], batch_size: int, say: Callable[[str], None]
                        ) -> Tuple[Dict[str, dict], List[VideoResult]]:
    """{condition: its result} and the original condition's per-video results."""
    import tempfile

    results: Dict[str, dict] = {}
    say("original")
    orig = _results(ev, _score_samples(ds.root, [s for s in ds.samples if s.video in {v.id for v in ev}],
                                       det, batch_size), idents)
    results["original"] = condition_result(orig, seen_ids, seen_methods)
    tmp = tempfile.TemporaryDirectory(prefix="veriswap-card-") if workdir is None else None
    work = Path(workdir) if workdir is not None else Path(tmp.name)
    try:
        for c in conditions:
            if c == "original":
                continue
            say(c)
            results[c] = condition_result(_results(ev, _degraded_scores(ev, ds.settings, c, det, work, batch_size),
                                                   idents), seen_ids, seen_methods)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return results, orig


def _card_warnings(evaluation: dict, results: Dict[str, dict]) -> List[str]:
    warnings = []
    if not evaluation["unseen_identities"]:
        warnings.append("no held-out identity is unseen in training: generalisation to new people is not measured")
    if not any(not r["family_seen"] for r in results["original"]["per_method"].values()):
        warnings.append("no manipulation family was left out of training: cross-method generalisation is not measured")
    o = results["original"]["overall"]
    if min(o["real_videos"], o["fake_videos"]) < 3:
        warnings.append(f"only {o['real_videos']} real / {o['fake_videos']} fake held-out videos: AUCs are coarse")
    return warnings


def build_card(dataset_dir: Path, detector_dir: Path, detector=None, split: str = "test",
               train_dataset: Optional[Path] = None, conditions: Sequence[str] = tuple(CONDITIONS),
               batch_size: int = 32, workdir: Optional[Path] = None,
               progress: Optional[Callable[[str], None]] = None,
               identity_of: Optional[Callable[[object], Optional[List[str]]]] = None) -> ModelCard:
    """Measure a detector on held-out videos and describe it (see detect.card's doc). `split`: the eval
    dataset's split to measure ("all" for an eval-only dataset). `train_dataset`: the dataset the detector
    was trained on (default: the one its config names, else `dataset_dir`). `identity_of(video entry)`: the
    names of the people in a clip where the caller knows them (else found from the faces)."""
    from . import dataset as D
    from .backbone import BackboneSource
    from .model import Detector

    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    for c in conditions:
        if c not in CONDITIONS:
            raise InputError(f"unknown condition {c!r}; choose from {', '.join(CONDITIONS)}")
    ds = D.load(dataset_dir)
    det = detector or Detector(detector_dir)
    cfg = det.config
    extra = cfg.extra or {}
    tpath = train_dataset or extra.get("dataset")
    tds = D.load(tpath) if tpath and Path(tpath).exists() else ds
    left_out = list(extra.get("left_out_methods") or [])
    warnings: List[str] = []
    if tpath and tds is ds and Path(tpath).resolve() != Path(dataset_dir).resolve():
        warnings.append(f"training dataset {tpath} not found: training data read from the eval dataset")
    train_v, ev = _held_out(ds, tds, split, left_out, D.SPLITS)

    say("identities")
    idents = _all_identities(tds, ds, train_v, ev, identity_of)
    seen_ids = sorted({i for v in train_v for i in idents.get(v.id, [])})
    seen_methods = sorted({v.method or "unknown" for v in train_v if v.label == 1})
    results, orig = _measure_conditions(ds, ev, det, conditions, idents, seen_ids, seen_methods, workdir,
                                        batch_size, say)

    fl = [(v.label, p) for v in orig for p in v.frames]
    cal = {"threshold": cfg.threshold, "threshold_method": cfg.threshold_method, "eer_threshold": cfg.eer_threshold,
           "ece": ece([a for a, _ in fl], [b for _, b in fl]), "ece_bins": 10, "frames": len(fl)}
    fp = false_positives(orig, seen_ids, cfg.threshold)
    bsrc = BackboneSource.from_dict(extra.get("backbone"))
    if bsrc is None:        # a detector trained before backbones were recorded
        bsrc = BackboneSource(cfg.arch, "file" if cfg.weights_init else "none", cfg.weights_init)
    training = {"dataset": str(tds.root), "videos_total": len(train_v), "splits": _split_counts(tds, train_v),
                "identities": seen_ids, "methods": seen_methods,
                "method_families": sorted({method_family(m) for m in seen_methods}),
                "left_out_methods": left_out, "sbi": bool(cfg.sbi), "epochs": cfg.epochs, "best_epoch": cfg.best_epoch}
    eval_ids = sorted({i for v in ev for i in idents.get(v.id, [])})
    evaluation = {"dataset": str(ds.root), "split": split, "videos": len(ev), "identities": eval_ids,
                  "unseen_identities": [i for i in eval_ids if i not in seen_ids],
                  "methods": sorted({v.method or "unknown" for v in ev if v.label == 1}),
                  "identity_source": "given by the caller" if identity_of else
                  "dataset fields" if any(getattr(v, "identities", None) for v in ev) else
                  "dlib embeddings of the crops, grouped at distance 0.6 (built-in photos named)",
                  "conditions": {c: {"crf": CONDITIONS[c][0], "scale": CONDITIONS[c][1]} for c in results}}
    warnings += _card_warnings(evaluation, results)
    return ModelCard(str(detector_dir), cfg.arch, cfg.input_size, bsrc.to_dict(), training, evaluation, results,
                     cal, fp, warnings, now_utc(), time.perf_counter() - t0)

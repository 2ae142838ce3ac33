"""The model card of a detector: what it was trained on and what it was measured to do on held-out data.

`detect eval` writes it into the detector folder as `model_card.json` (this dataclass) and `MODEL_CARD.md`
(the same, for people); `detect score` prints its key lines and `detect.verdict` decides from it whether
a score may become a FAKE / REAL verdict.

- training data: videos, frames (crops), identities and manipulation methods per split;
- backbone and where its starting weights came from (hub, local file, or from scratch);
- held-out results (the eval dataset's test split; with `leave_out` or a foreign eval set, methods and
  identities never trained on): frame and video AUC overall, per manipulation method (each against all
  reals, marked seen / unseen in training) and per identity (marked seen / unseen), under several
  conditions: the original videos, H.264 CRF 23 and CRF 40 re-encodes (FaceForensics++'s c23 / c40),
  a 0.5x downscale, and CRF 40 + 0.5x together;
- calibration: the threshold and its expected calibration error (ECE, 10 bins, frame level);
- false positives: the share of real test clips of identities never seen in training whose video score
  (mean frame P(fake)) is at or above the threshold.

Identities: a video's `identities` field in the dataset when present; otherwise they are found from the
faces themselves: dlib embeddings of a few crops per real video, grouped at dlib's 0.6 same-person
distance, named after the built-in photo they match (swap.samples) or `person-N`. A fake carries the
identities of its source footage (its split group's real videos) plus the identity its face matches.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from swap.errors import InputError
from swap.video import atomic_write_bytes

from . import metrics as M

FORMAT = "veriswap-model-card"
VERSION = 1
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"

# condition -> (H.264 CRF of the re-encode or None, scale); 0.5x is encoded at CRF 18 to isolate the downscale
CONDITIONS: Dict[str, Tuple[Optional[int], float]] = {
    "original": (None, 1.0), "crf23": (23, 1.0), "crf40": (40, 1.0), "0.5x": (18, 0.5), "crf40+0.5x": (40, 0.5)}


def method_family(method: Optional[str]) -> str:
    """A manipulation's family: veriswap's autoencoder swaps (any model, direction) are one family, its
    graphics-based swaps another; other names stand for themselves."""
    if not method:
        return "unknown"
    t = method.split()
    if t[0] == "veriswap" and len(t) > 1:
        return "graphic" if "graphic" in t[1] else "autoencoder"
    return method


@dataclass
class VideoResult:
    id: str
    label: int
    score: Optional[float]              # mean frame P(fake); None = no face found (not judgeable)
    frames: List[float] = field(default_factory=list)
    method: Optional[str] = None
    identities: List[str] = field(default_factory=list)


def measure(videos: Sequence[VideoResult]) -> dict:
    """Frame and video AUC of a set of videos (None where a class is missing)."""
    vs = [v for v in videos if v.score is not None]
    fy = [v.label for v in vs for _ in v.frames]
    fp = [p for v in vs for p in v.frames]
    return {"real_videos": sum(v.label == 0 for v in vs), "fake_videos": sum(v.label == 1 for v in vs),
            "frames": len(fp), "not_judged": len(videos) - len(vs),
            "frame_auc": M.auc(fy, fp) if fp else None,
            "video_auc": M.auc([v.label for v in vs], [v.score for v in vs]) if vs else None}


def condition_result(videos: Sequence[VideoResult], seen_identities: Iterable[str],
                     seen_methods: Iterable[str]) -> dict:
    """One condition: overall, per method (its fakes vs all reals), per identity (the videos showing it),
    and all videos of identities never seen in training."""
    seen_i, seen_m = set(seen_identities), set(seen_methods)
    seen_f = {method_family(m) for m in seen_m}
    reals = [v for v in videos if v.label == 0]
    out = {"overall": measure(videos), "per_method": {}, "per_identity": {}}
    for m in sorted({v.method or "unknown" for v in videos if v.label == 1}):
        r = measure(reals + [v for v in videos if v.label == 1 and (v.method or "unknown") == m])
        r.update(family=method_family(m), seen=m in seen_m, family_seen=method_family(m) in seen_f)
        out["per_method"][m] = r
    for who in sorted({i for v in videos for i in v.identities}):
        r = measure([v for v in videos if who in v.identities])
        r["seen"] = who in seen_i
        out["per_identity"][who] = r
    unseen = [v for v in videos if v.identities and not set(v.identities) & seen_i]
    out["unseen_identities"] = measure(unseen)
    out["unseen_identities"]["identities"] = sorted({i for v in unseen for i in v.identities})
    return out


def ece(labels: Sequence[int], probs: Sequence[float], bins: int = 10) -> Optional[float]:
    """Expected calibration error of P(fake): sum over equal-width bins of |share fake - mean P| x weight."""
    y, p = np.asarray(labels, np.float64), np.asarray(probs, np.float64)
    if not y.size:
        return None
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(y[idx == b].mean() - p[idx == b].mean()) * (idx == b).sum()
                     for b in range(bins) if (idx == b).any()) / y.size)


def false_positives(videos: Sequence[VideoResult], seen_identities: Iterable[str], threshold: float) -> dict:
    seen = set(seen_identities)
    rs = [v for v in videos if v.label == 0 and v.score is not None and v.identities and not set(v.identities) & seen]
    k = sum(v.score >= threshold for v in rs)
    return {"unseen_real_videos": len(rs), "flagged": k, "rate": k / len(rs) if rs else None,
            "threshold": threshold, "identities": sorted({i for v in rs for i in v.identities})}


@dataclass
class ModelCard:
    detector: str
    arch: str
    input_size: int
    backbone: dict
    training: dict
    evaluation: dict
    results: Dict[str, dict]
    calibration: dict
    false_positives: dict
    warnings: List[str] = field(default_factory=list)
    created: str = ""
    seconds: float = 0.0
    format: str = FORMAT
    version: int = VERSION

    # -- file ------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder = Path(folder)
        atomic_write_bytes(folder / CARD_JSON, json.dumps(asdict(self), indent=2).encode())
        atomic_write_bytes(folder / CARD_MD, self.to_markdown().encode())

    @classmethod
    def load(cls, folder: Path) -> Optional["ModelCard"]:
        """The card of a detector folder; None if it has none. A damaged card is a bad input."""
        p = Path(folder) / CARD_JSON
        if not p.is_file():
            return None
        try:
            d = json.loads(p.read_bytes())
            if d.get("format") != FORMAT:
                raise ValueError
            if d.get("version") != VERSION:
                raise InputError(f"model card version {d.get('version')} not supported (this veriswap reads {VERSION})")
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
            raise InputError(f"model card is damaged: {p} (re-run detect eval)") from None

    # -- reading -------------------------------------------------------------------------------
    def result(self, condition: str = "original") -> Optional[dict]:
        return self.results.get(condition)

    def key_lines(self) -> List[str]:
        """What `detect score` prints under its verdicts."""
        f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        tr, ev = self.training, self.evaluation
        lines = [f"model card: {self.backbone.get('description') or self.arch}",
                 f"  trained on {tr.get('videos_total', '?')} videos, {len(tr.get('identities', []))} identities "
                 f"({', '.join(tr.get('identities', [])) or 'none recorded'}), methods: "
                 f"{', '.join(tr.get('method_families', [])) or 'none'}{' + SBI' if tr.get('sbi') else ''}"]
        o = self.result("original") or {}
        ov, un = o.get("overall", {}), o.get("unseen_identities", {})
        lines.append(f"  held-out video AUC {f(ov.get('video_auc'))} ({ov.get('real_videos', 0)} real / "
                     f"{ov.get('fake_videos', 0)} fake videos); on unseen identities {f(un.get('video_auc'))} "
                     f"({un.get('real_videos', 0)} real / {un.get('fake_videos', 0)} fake)")
        cross = {m: r for m, r in o.get("per_method", {}).items() if not r.get("family_seen")}
        if cross:
            lines.append("  methods never trained on: " + ", ".join(f"{m} video AUC {f(r.get('video_auc'))}"
                                                                     for m, r in cross.items()))
        deg = [f"{c} {f((self.results[c].get('overall') or {}).get('video_auc'))}" for c in CONDITIONS
               if c != "original" and c in self.results]
        if deg:
            lines.append("  after re-encoding, video AUC: " + ", ".join(deg))
        fp = self.false_positives
        lines.append(f"  false positives on unseen real identities: "
                     f"{fp.get('flagged', 0)}/{fp.get('unseen_real_videos', 0)} at threshold "
                     f"{self.calibration.get('threshold', float('nan')):.3f}; ECE {f(self.calibration.get('ece'))}")
        return lines

    def to_markdown(self) -> str:
        f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        tr, ev = self.training, self.evaluation
        md = [f"# Model card: {Path(self.detector).name}", "",
              f"Written by `veriswap detect eval` on {self.created} ({self.seconds:.0f} s).", "",
              "## Backbone", "", f"- {self.backbone.get('description') or self.arch}",
              f"- input {self.input_size} px", "", "## Training data", ""]
        md.append(f"- dataset: `{tr.get('dataset')}`")
        for sp, c in (tr.get("splits") or {}).items():
            md.append(f"- {sp}: {c.get('real_videos', 0)} real / {c.get('fake_videos', 0)} fake videos, "
                      f"{c.get('real_frames', 0)} real / {c.get('fake_frames', 0)} fake face crops")
        md.append(f"- identities: {', '.join(tr.get('identities', [])) or 'none recorded'}")
        md.append(f"- manipulation methods: {', '.join(tr.get('methods', [])) or 'none'}"
                  f"{' (+ self-blended images, SBI)' if tr.get('sbi') else ''}")
        if tr.get("left_out_methods"):
            md.append(f"- left out of training: {', '.join(tr['left_out_methods'])}")
        md += ["", "## Held-out evaluation", "", f"- dataset: `{ev.get('dataset')}`, split `{ev.get('split')}`",
               f"- identities never seen in training: {', '.join(ev.get('unseen_identities', [])) or 'none'}",
               f"- identities found by: {ev.get('identity_source', '?')}", "",
               "| condition | frame AUC | video AUC | unseen identities: video AUC | videos (real/fake) | not judged |",
               "|---|---|---|---|---|---|"]
        for c, r in self.results.items():
            o, u = r["overall"], r["unseen_identities"]
            md.append(f"| {c} | {f(o['frame_auc'])} | {f(o['video_auc'])} | {f(u['video_auc'])} "
                      f"({u['real_videos']}/{u['fake_videos']}) | {o['real_videos']}/{o['fake_videos']} | "
                      f"{o['not_judged']} |")
        o = self.result("original") or {}
        if o.get("per_method"):
            md += ["", "Per manipulation method (original quality; its fakes against all held-out reals):", "",
                   "| method | family | trained on | frame AUC | video AUC | fake videos |", "|---|---|---|---|---|---|"]
            for m, r in o["per_method"].items():
                seen = "yes" if r["seen"] else ("family" if r["family_seen"] else "**no**")
                md.append(f"| {m} | {r['family']} | {seen} | {f(r['frame_auc'])} | {f(r['video_auc'])} | "
                          f"{r['fake_videos']} |")
        if o.get("per_identity"):
            md += ["", "Per identity (original quality; the held-out videos showing them):", "",
                   "| identity | seen in training | frame AUC | video AUC | videos (real/fake) |", "|---|---|---|---|---|"]
            for who, r in o["per_identity"].items():
                md.append(f"| {who} | {'yes' if r['seen'] else '**no**'} | {f(r['frame_auc'])} | "
                          f"{f(r['video_auc'])} | {r['real_videos']}/{r['fake_videos']} |")
        cal, fp = self.calibration, self.false_positives
        rate = "n/a" if fp.get("rate") is None else f"{100 * fp['rate']:.0f}%"
        md += ["", "## Calibration and false positives", "",
               f"- threshold {cal.get('threshold', float('nan')):.3f} ({cal.get('threshold_method')}); "
               f"ECE {f(cal.get('ece'))} over {cal.get('frames', 0)} held-out frames",
               f"- real clips of identities never seen in training flagged fake: {fp.get('flagged', 0)} of "
               f"{fp.get('unseen_real_videos', 0)} ({rate})"]
        if self.warnings:
            md += ["", "## Warnings", ""] + [f"- {w}" for w in self.warnings]
        return "\n".join(md) + "\n"


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


def build_card(dataset_dir: Path, detector_dir: Path, detector=None, split: str = "test",
               train_dataset: Optional[Path] = None, conditions: Sequence[str] = tuple(CONDITIONS),
               batch_size: int = 32, workdir: Optional[Path] = None,
               progress: Optional[Callable[[str], None]] = None,
               identity_of: Optional[Callable[[object], Optional[List[str]]]] = None) -> ModelCard:
    """Measure a detector on held-out videos and describe it (see the module doc). `split`: the eval
    dataset's split to measure ("all" for an eval-only dataset). `train_dataset`: the dataset the detector
    was trained on (default: the one its config names, else `dataset_dir`). `identity_of(video entry)`: the
    names of the people in a clip where the caller knows them (else found from the faces)."""
    import tempfile

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

    train_v = [v for v in tds.videos.values() if v.split in ("train", "val")
               and not (v.label == 1 and (v.method in left_out or method_family(v.method) in left_out))]
    ev = [v for v in ds.videos.values() if v.samples and (split == "all" or v.split == split)]
    if split != "all" and split not in D.SPLITS:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(D.SPLITS)}, all")
    if not ev:
        raise InputError(f"the dataset has no {split} videos")
    same = tds.root.resolve() == ds.root.resolve()
    if not same:        # a foreign eval set: its videos are held out whatever split they sit in
        train_ids = {v.id for v in train_v}
        ev = [v for v in ev if v.id not in train_ids]

    say("identities")
    files: Dict[Tuple[str, str], List[str]] = {}
    for d in ({tds.root: tds, ds.root: ds}).values():
        for s in d.samples:
            files.setdefault((str(d.root), s.video), []).append(s.file)
    entries = [(tds.root, v, files.get((str(tds.root), v.id), [])) for v in train_v] + \
              [(ds.root, v, files.get((str(ds.root), v.id), [])) for v in ev]
    idents = find_identities(entries, identity_of=identity_of)
    seen_ids = sorted({i for v in train_v for i in idents.get(v.id, [])})
    seen_methods = sorted({v.method or "unknown" for v in train_v if v.label == 1})

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

    fl = [(v.label, p) for v in orig for p in v.frames]
    cal = {"threshold": cfg.threshold, "threshold_method": cfg.threshold_method, "eer_threshold": cfg.eer_threshold,
           "ece": ece([a for a, _ in fl], [b for _, b in fl]), "ece_bins": 10, "frames": len(fl)}
    fp = false_positives(orig, seen_ids, cfg.threshold)

    def split_counts(d, vids) -> dict:
        out: Dict[str, dict] = {}
        for sp in ("train", "val"):
            vs = [v for v in vids if v.split == sp]
            ids = {v.id for v in vs}
            smp = [s for s in d.samples if s.video in ids]
            out[sp] = {"real_videos": sum(v.label == 0 for v in vs), "fake_videos": sum(v.label == 1 for v in vs),
                       "real_frames": sum(s.label == 0 for s in smp), "fake_frames": sum(s.label == 1 for s in smp)}
        return out

    bsrc = BackboneSource.from_dict(extra.get("backbone"))
    if bsrc is None:        # a detector trained before backbones were recorded
        bsrc = BackboneSource(cfg.arch, "file" if cfg.weights_init else "none", cfg.weights_init)
    training = {"dataset": str(tds.root), "videos_total": len(train_v), "splits": split_counts(tds, train_v),
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
    if not evaluation["unseen_identities"]:
        warnings.append("no held-out identity is unseen in training: generalisation to new people is not measured")
    if not any(not r["family_seen"] for r in results["original"]["per_method"].values()):
        warnings.append("no manipulation family was left out of training: cross-method generalisation is not measured")
    o = results["original"]["overall"]
    if min(o["real_videos"], o["fake_videos"]) < 3:
        warnings.append(f"only {o['real_videos']} real / {o['fake_videos']} fake held-out videos: AUCs are coarse")
    return ModelCard(str(detector_dir), cfg.arch, cfg.input_size, bsrc.to_dict(), training, evaluation, results,
                     cal, fp, warnings, now_utc(), time.perf_counter() - t0)

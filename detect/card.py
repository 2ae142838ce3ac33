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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

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


def _seen_table(rows: Optional[dict], title: str, what: str, seen: str) -> List[str]:
    """Markdown lines: one row per family / identity with whether training saw it and its AUCs."""
    if not rows:
        return []
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    md = ["", title, "", f"| {what} | {seen} | frame AUC | video AUC | videos (real/fake) |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        md.append(f"| {name} | {'yes' if r['seen'] else '**no**'} | {f(r['frame_auc'])} | {f(r['video_auc'])} | "
                  f"{r['real_videos']}/{r['fake_videos']} |")
    return md


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
    # a family pooled (all its methods' fakes vs all reals): each autoencoder model and direction is its own
    # method, often one video each, too few for a figure alone
    out["per_family"] = {}
    for fam in sorted({method_family(v.method) for v in videos if v.label == 1}):
        r = measure(reals + [v for v in videos if v.label == 1 and method_family(v.method) == fam])
        r.update(seen=fam in seen_f, methods=sorted({v.method or "unknown" for v in videos
                                                      if v.label == 1 and method_family(v.method) == fam}))
        out["per_family"][fam] = r
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
        fams = o.get("per_family") or {}
        if fams:
            lines.append("  per method family: " + ", ".join(
                f"{fam} ({'trained on' if r.get('seen') else 'never trained on'}) video AUC {f(r.get('video_auc'))} "
                f"({r.get('real_videos', 0)} real / {r.get('fake_videos', 0)} fake)" for fam, r in fams.items()))
        else:
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
        md += _seen_table(o.get("per_family"), "Per method family (original quality; all its methods' fakes "
                          "against all held-out reals):", "family", "trained on")
        md += _seen_table(o.get("per_identity"), "Per identity (original quality; the held-out videos showing "
                          "them):", "identity", "seen in training")
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


# building the card lives in detect/card_build.py (it imports this module); its names stay importable here
_BUILD = ("build_card", "find_identities", "degrade_video", "now_utc", "_video_embedding", "_score_samples",
          "_results", "_degraded_scores")


def __getattr__(name: str):
    if name in _BUILD:
        from . import card_build

        return getattr(card_build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Honest verdicts: a score becomes FAKE / REAL only where the detector's model card shows it was measured
to work on data like the input; otherwise the score is given with UNCERTAIN and the reason.

The rule (MIN_VIDEO_AUC = 0.90, at least MIN_VIDEOS real and MIN_VIDEOS fake held-out videos behind each
figure), read from the card's results at the input's condition (original quality unless told otherwise):

1. there is a card (`detect eval` wrote one);
2. held-out video AUC >= 0.90 on identities never seen in training;
3. the manipulation: when the input's method family is known (a veriswap output's labels name it) and was
   trained on, that family's held-out figure >= 0.90; when it is known but was not trained on, a
   cross-method measurement of that family >= 0.90; when it is unknown (any suspect video), every
   cross-method measurement (a family left out of training) >= 0.90, and there must be one. A family's
   figure pools all its methods' fakes (each autoencoder model and direction is a method, often of one
   video); cards written before that was recorded are read per method.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

from .card import ModelCard

MIN_VIDEO_AUC = 0.90
MIN_VIDEOS = 3
FAKE, REAL, UNCERTAIN = "FAKE", "REAL", "UNCERTAIN"


@dataclass
class Verdict:
    label: str                          # FAKE | REAL | UNCERTAIN
    score: Optional[float]
    threshold: float
    reasons: List[str] = field(default_factory=list)    # why UNCERTAIN
    basis: List[str] = field(default_factory=list)      # the card's figures that allow a verdict

    @property
    def certain(self) -> bool:
        return self.label != UNCERTAIN

    def line(self) -> str:
        s = "n/a" if self.score is None else f"{self.score:.3f}"
        if self.label == UNCERTAIN:
            return f"UNCERTAIN (score {s}, threshold {self.threshold:.3f}): {'; '.join(self.reasons)}"
        op = ">=" if self.label == FAKE else "<"
        return f"{self.label} (score {s} {op} threshold {self.threshold:.3f}; validated: {'; '.join(self.basis)})"

    def to_dict(self) -> dict:
        return asdict(self)


def _enough(r: dict) -> bool:
    return min(r.get("real_videos", 0), r.get("fake_videos", 0)) >= MIN_VIDEOS


def _fmt(r: dict) -> str:
    auc = r.get("video_auc")
    return f"video AUC {'n/a' if auc is None else f'{auc:.3f}'} on {r.get('real_videos', 0)} real / " \
           f"{r.get('fake_videos', 0)} fake videos"


def _check(r: dict, what: str) -> Tuple[bool, str]:
    if not r or (r.get("real_videos", 0) == 0 or r.get("fake_videos", 0) == 0):
        return False, f"this detector was never validated on {what}"
    if not _enough(r):
        return False, f"validated on {what} with only {_fmt(r)} (needs {MIN_VIDEOS} of each)"
    auc = r.get("video_auc")
    if auc is None or auc < MIN_VIDEO_AUC:
        return False, f"on {what} its held-out {_fmt(r)} (< {MIN_VIDEO_AUC:.2f})"
    return True, f"{what}: {_fmt(r)}"


def _families(r: dict) -> dict:
    """The figures a verdict rests on: per method family pooled (cards since the family table), else per
    method (older cards), each with its `family` and `family_seen`."""
    if r.get("per_family"):
        return {fam: {**x, "family": fam, "family_seen": x.get("seen")} for fam, x in r["per_family"].items()}
    return r.get("per_method") or {}


def validation(card: Optional[ModelCard], input_family: Optional[str] = None,
               condition: str = "original") -> Tuple[List[str], List[str]]:
    """(reasons against a verdict, basis for one) for inputs like this one."""
    if card is None:
        return ["no model card: this detector was never evaluated on held-out data (run `veriswap detect eval`)"], []
    r = card.result(condition)
    if r is None:
        return [f"this detector was never measured at {condition} quality"], []
    reasons, basis = [], []
    ok, msg = _check(r.get("unseen_identities") or {}, "unseen identities")
    (basis if ok else reasons).append(msg)
    methods = _families(r)
    cross = {m: x for m, x in methods.items() if not x.get("family_seen")}
    if input_family is not None:
        fam = {m: x for m, x in methods.items() if x.get("family") == input_family}
        trained = input_family in (card.training.get("method_families") or [])
        what = f"{input_family} swaps" + ("" if trained else " (a method family it never trained on)")
        if not fam:
            reasons.append(f"this detector was never validated on {what}")
        for m, x in fam.items():
            ok, msg = _check(x, what if m == input_family else f"{what} ({m})")
            (basis if ok else reasons).append(msg)
    elif not cross:
        reasons.append("this detector was never validated on a manipulation method it did not train on "
                       "(cross-method), and this video's method is unknown")
    else:
        for m, x in cross.items():
            ok, msg = _check(x, f"a method it never trained on ({m})")
            (basis if ok else reasons).append(msg)
    return reasons, basis


def decide(score: Optional[float], threshold: float, card: Optional[ModelCard],
           input_family: Optional[str] = None, condition: str = "original") -> Verdict:
    """FAKE / REAL where the card allows it (see the module doc), else UNCERTAIN with the reasons."""
    if score is None:
        return Verdict(UNCERTAIN, None, threshold, ["no face could be scored"])
    reasons, basis = validation(card, input_family, condition)
    if reasons:
        return Verdict(UNCERTAIN, score, threshold, reasons, basis)
    return Verdict(FAKE if score >= threshold else REAL, score, threshold, [], basis)

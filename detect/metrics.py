"""Binary-classification metrics in numpy (no sklearn): ROC, AUC, EER, AP, accuracy, thresholds.

Label 1 = fake (positive), scores = probability of fake. Ties in scores are handled as one
threshold step (like sklearn's `roc_curve`/`roc_auc_score`/`average_precision_score`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np


def _check(labels, scores) -> Tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.size} vs {s.size})")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < y.sum() < y.size


def _counts(y: np.ndarray, s: np.ndarray):
    """Cumulative true/false positives at each distinct threshold, highest score first."""
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]    # last index of each tie group
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return fps.astype(np.float64), tps.astype(np.float64), s[last]


def roc_curve(labels, scores) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), starting at (0, 0) with threshold +inf; predict fake when score >= t."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        raise ValueError("ROC needs both real and fake samples")
    fps, tps, thr = _counts(y, s)
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    return fpr, tpr, np.r_[np.inf, thr]


def auc(labels, scores) -> Optional[float]:
    """Area under the ROC curve (trapezoids: ties count half). None when a class is missing."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return None
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.trapezoid(tpr, fpr))


def eer(labels, scores) -> Tuple[Optional[float], Optional[float]]:
    """Equal error rate and its threshold: the ROC point where FPR = FNR (linear interpolation
    between the two operating points around the crossing). (None, None) when a class is missing."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return None, None
    fpr, tpr, thr = roc_curve(y, s)
    fnr = 1.0 - tpr
    d = fnr - fpr                              # decreasing from 1 to -1 along the curve
    i = int(np.nonzero(d <= 0)[0][0])          # first point at or past the crossing
    if d[i] == 0 or i == 0:
        return float(fpr[i]), float(thr[i])
    a = d[i - 1] / (d[i - 1] - d[i])           # fraction of the way from point i-1 to i
    rate = fpr[i - 1] + a * (fpr[i] - fpr[i - 1])
    t = thr[i] if not np.isfinite(thr[i - 1]) else thr[i - 1] + a * (thr[i] - thr[i - 1])
    return float(rate), float(t)


def average_precision(labels, scores) -> Optional[float]:
    """AP = sum over thresholds of (R_n - R_{n-1}) * P_n (no interpolation, as sklearn)."""
    y, s = _check(labels, scores)
    if not y.size or y.sum() == 0:
        return None
    fps, tps, _ = _counts(y, s)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def accuracy(labels, scores, threshold: float) -> Optional[float]:
    y, s = _check(labels, scores)
    if not y.size:
        return None
    return float(np.mean((s >= threshold).astype(np.int64) == y))


def balanced_accuracy(labels, scores, threshold: float) -> Optional[float]:
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return None
    pred = s >= threshold
    return float((pred[y == 1].mean() + (~pred[y == 0]).mean()) / 2)


def best_threshold(labels, scores) -> Tuple[float, float]:
    """Threshold maximising balanced accuracy (Youden's J), midway between neighbouring scores so
    it generalises a little better than a training score itself. Returns (threshold, balanced acc)."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return 0.5, float("nan")
    fpr, tpr, thr = roc_curve(y, s)
    j = tpr - fpr
    i = int(np.argmax(j[1:]) + 1)
    lower = s[s < thr[i]]
    t = float(thr[i] + lower.max()) / 2 if lower.size else float(thr[i])
    return t, float((tpr[i] + 1 - fpr[i]) / 2)


@dataclass
class Metrics:
    n: int
    n_fake: int
    auc: Optional[float]
    eer: Optional[float]
    eer_threshold: Optional[float]
    ap: Optional[float]
    acc_05: Optional[float]
    acc_threshold: Optional[float]
    threshold: float

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def compute(labels, scores, threshold: float = 0.5) -> Metrics:
    y, s = _check(labels, scores)
    e, et = eer(y, s)
    return Metrics(int(y.size), int(y.sum()), auc(y, s), e, et, average_precision(y, s),
                   accuracy(y, s, 0.5), accuracy(y, s, threshold), float(threshold))

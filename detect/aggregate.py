"""Video (or face-track) verdicts from frame probabilities: a registry of aggregation rules.

- `confident` (default): the DFDC winner's rule. If many frames are confidently fake (> 0.8: more than
  n // 2.5 of them and more than 11/32 of n), the mean of those; else if > 90% of frames are
  confidently real (< 0.2), the mean of those; else the plain mean. One strong manipulated stretch
  is not diluted by the rest, and a clean video stays clean.
- `mean`: DeepfakeBench's video score. `max`, `median`: for comparison.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from provenance.registry import Registry

Rule = Callable[[np.ndarray], float]
RULES = Registry("aggregation rule")         # name -> fn(probabilities) -> score
DEFAULT_RULE = "confident"
register = RULES.register


@register("mean")
def mean(p: np.ndarray) -> float:
    return float(np.mean(p))


@register("median")
def median(p: np.ndarray) -> float:
    return float(np.median(p))


@register("max")
def maximum(p: np.ndarray) -> float:
    return float(np.max(p))


@register("confident")
def confident(p: np.ndarray, hi: float = 0.8, lo: float = 0.2) -> float:
    n = p.size
    fakes = int(np.count_nonzero(p > hi))
    if fakes > n // 2.5 and fakes > 11 * n / 32:
        return float(np.mean(p[p > hi]))
    if np.count_nonzero(p < lo) > 0.9 * n:
        return float(np.mean(p[p < lo]))
    return float(np.mean(p))


def aggregate(probs: Sequence[float], rule: str = DEFAULT_RULE) -> float:
    if rule not in RULES:
        raise KeyError(rule)
    p = np.asarray(probs, np.float64)
    if p.size == 0:
        raise ValueError("no probabilities to aggregate")
    return RULES[rule](p)

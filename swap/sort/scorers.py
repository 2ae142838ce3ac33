"""Sort's scorers: name -> how to score a face (blur, identity, yaw, pitch, hist), in a registry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from provenance.registry import Registry

from ..faces.pose import head_pose


@dataclass
class FaceInputs:
    """What scorers read for one face: from faces.json, else from its pixels."""

    blur: Optional[float] = None
    embedding: Optional[np.ndarray] = None      # (128,) float32
    landmarks: Optional[np.ndarray] = None      # (68, 2) crop pixels
    hist: Optional[np.ndarray] = None           # (256,) float32, sums to 1


@dataclass
class ScoreContext:
    ref_embedding: Optional[np.ndarray] = None  # --ref-face's largest face
    ref_face: Optional[str] = None
    reference: dict = field(default_factory=dict)   # scorers note what they measured against


ScoreFn = Callable[[Sequence[FaceInputs], ScoreContext], np.ndarray]


@dataclass(frozen=True)
class Scorer:
    fn: ScoreFn                 # inputs of every face (FACES_DIR and rejected/) -> scores, NaN = unknown
    needs: FrozenSet[str]       # FaceInputs fields it reads
    order: str                  # "desc": higher is better; "asc": lower is better; "value": no better/worse
    describe: str


SCORERS = Registry("scorer", option="--by")       # name -> Scorer


def register_scorer(name: str, needs: Sequence[str], order: str, describe: str):
    def deco(fn: ScoreFn) -> ScoreFn:
        SCORERS.register(name, Scorer(fn, frozenset(needs), order, describe))
        return fn
    return deco


def _column(inputs: Sequence[FaceInputs], name: str) -> np.ndarray:
    return np.array([np.nan if getattr(x, name) is None else getattr(x, name) for x in inputs], np.float64)


@register_scorer("blur", ["blur"], "desc", "sharpness: variance of the Laplacian, higher is sharper")
def _score_blur(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    return _column(inputs, "blur")


def _known(inputs: Sequence[FaceInputs], name: str) -> Tuple[List[int], np.ndarray]:
    """The faces that have input `name`, and a NaN score for every face (unknown until scored)."""
    return [i for i, x in enumerate(inputs) if getattr(x, name) is not None], np.full(len(inputs), np.nan)


@register_scorer("identity", ["embedding"], "asc", "identity distance to the reference, lower is more alike")
def _score_identity(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    have, out = _known(inputs, "embedding")
    if not have:
        return out
    embs = np.stack([inputs[i].embedding for i in have]).astype(np.float32)
    if ctx.ref_embedding is not None:
        ref = np.asarray(ctx.ref_embedding, np.float32)
        ctx.reference["identity"] = f"largest face in {ctx.ref_face}"
    else:
        # the element-wise median: a few other people or bad detections barely move it (a mean would)
        ref = np.median(embs, 0)
        ctx.reference["identity"] = f"median of {len(have)} embeddings in the folder"
    out[have] = np.linalg.norm(embs - ref, axis=1)
    return out


@register_scorer("yaw", ["landmarks"], "value", "head yaw in degrees from the landmarks, + = nose to the right")
def _score_yaw(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    return np.array([head_pose(x.landmarks)[0] if x.landmarks is not None else np.nan for x in inputs])


@register_scorer("pitch", ["landmarks"], "value", "head pitch in degrees from the landmarks, + = looking up")
def _score_pitch(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    return np.array([head_pose(x.landmarks)[1] if x.landmarks is not None else np.nan for x in inputs])


@register_scorer("hist", ["hist"], "asc", "grey-histogram distance to the folder's mean, lower is more typical")
def _score_hist(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    import cv2

    have, out = _known(inputs, "hist")
    if not have:
        return out
    mean = np.mean([inputs[i].hist for i in have], 0).astype(np.float32)
    ctx.reference["hist"] = f"mean grey histogram of {len(have)} faces (central face ellipse)"
    for i in have:
        out[i] = cv2.compareHist(inputs[i].hist, mean, cv2.HISTCMP_BHATTACHARYYA)
    return out


def grey_hist(rgb: np.ndarray) -> np.ndarray:
    """256-bin grey histogram (sums to 1) over the central face ellipse of an aligned crop, so that the
    background and hair around the face weigh little."""
    import cv2

    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, int(h * 0.55)), (int(w * 0.32), int(h * 0.38)), 0, 0, 360, 255, -1)
    hist = cv2.calcHist([cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)], [0], mask, [256], [0, 256]).reshape(-1)
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)

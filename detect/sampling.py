"""The face samples of one video for a detect dataset: the swapped faces of a labelled fake (boxes and
landmarks from its labels), or the detected face tracks of any other video, with the face check and, for
a fake whose swapped-in person is known, only that person's tracks (`detect.identity`). Each returns the
samples, the frames sampled and per-track records (identity embedding, face check); `build_dataset`
writes them into the video's part file.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from swap.labels import Labels
from swap.video import iter_frames, write_image_atomic

from .crops import crop_face, evenly_spaced
from .dataset import DatasetSettings, Sample, VideoEntry, _crop_rel, _round_pts
from .faces import track_faces


def _keep_best(best: Dict[int, list], track: int, ob: tuple, k: int = 4) -> None:
    """Keep a track's `k` observations with the highest detector score (frames are not all held)."""
    top = best.setdefault(track, [])
    top.append(ob)
    top.sort(key=lambda o: -float(o[4]))
    del top[k:]


def samples_of_labelled(root: Path, v: VideoEntry, src: Path, labels: Labels,
                         s: DatasetSettings) -> Tuple[List[Sample], int, dict]:
    frames = {f.index: f for f in labels.frames if f.swapped and f.faces}
    pick = evenly_spaced(sorted(frames), s.frames)
    out: List[Sample] = []
    best: Dict[int, list] = {}
    for fr in iter_frames(src, select=set(pick).__contains__):
        for k, face in enumerate(frames[fr.index].faces):
            pts = np.asarray(face.landmarks, np.float64) if face.landmarks else None
            c = crop_face(fr.rgb, face.box, pts, s.scale, s.size)
            rel = _crop_rel(v.id, fr.index, k)
            write_image_atomic(root / rel, c.rgb, fsync=False)
            tid = k if face.track is None else int(face.track)
            out.append(Sample(rel, v.id, fr.index, k, tid, 1, landmarks=_round_pts(c.landmarks)))
            _keep_best(best, tid, (tid, fr.rgb, face.box, pts, 1.0))
    from .identity import track_verdicts

    infos = track_verdicts([o for obs in best.values() for o in obs], verify=False)
    return out, len(pick), {str(t): asdict(i) for t, i in infos.items()}


def samples_of_detected(root: Path, v: VideoEntry, src: Path, s: DatasetSettings,
                         identity: Optional[Tuple[str, np.ndarray]] = None) -> Tuple[List[Sample], int, dict, List[str]]:
    """Faces found by detection: every track that passes the face check is a sample of the video's label;
    for a fake with a known swapped identity (sources CSV), only the tracks that match it."""
    from .identity import SAME_PERSON, nearest, track_verdicts

    pick = evenly_spaced(range(max(v.frames_total, 1)), s.frames)
    out: List[Sample] = []
    best: Dict[int, list] = {}
    n = 0
    for ff in track_faces(src, pick, detector=s.detector):
        n += 1
        for k, face in enumerate(ff.faces):
            c = crop_face(ff.frame.rgb, face.box, face.landmarks, s.scale, s.size)
            rel = _crop_rel(v.id, ff.frame.index, k)
            write_image_atomic(root / rel, c.rgb, fsync=False)
            out.append(Sample(rel, v.id, ff.frame.index, k, face.track, v.label, landmarks=_round_pts(c.landmarks)))
            _keep_best(best, face.track, (face.track, ff.frame.rgb, face.box, face.landmarks, face.score))
    infos = track_verdicts([o for obs in best.values() for o in obs], verify=s.verify_faces)
    dropped: List[str] = []
    drop = {t for t, i in infos.items() if not i.face}
    if drop and drop >= set(infos):     # nothing confirmed (a poor swap can look like no face too): keep them all
        for t in sorted(drop):
            infos[t].face = True
        dropped.append(f"no track confirmed as a face by dlib's CNN detector: all {len(drop)} kept")
        drop = set()
    for t in sorted(drop):
        dropped.append(f"track {t} ({infos[t].frames} frames): {infos[t].reason}")
    if identity is not None and v.label == 1:
        name, ref = identity
        faces = [t for t, i in infos.items() if i.face]
        match = {t for t in faces if nearest(infos[t].emb(), {name: ref})[1] < SAME_PERSON}
        if match:
            for t in sorted(set(faces) - match):
                d = nearest(infos[t].emb(), {name: ref})[1]
                dropped.append(f"track {t} ({infos[t].frames} frames): not the swapped identity {name} "
                               f"(distance {d:.2f} >= {SAME_PERSON})")
                drop.add(t)
        elif faces:
            dropped.append(f"no face track matches the swapped identity {name}: all {len(faces)} kept")
    for x in out:
        if x.track in drop:
            (root / x.file).unlink(missing_ok=True)
    out = [x for x in out if x.track not in drop]
    return out, n, {str(t): asdict(i) for t, i in infos.items()}, dropped

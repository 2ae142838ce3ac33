"""Sort and clean a faces folder before training (faceswap's `tools sort`, DeepFaceLab's `sort` / best-N).

Every crop gets scores: `blur` (sharpness), `identity` (distance to the folder's median embedding or to a
reference face), `yaw` / `pitch` (head pose from the 68 landmarks) and `hist` (grey-histogram distance to
the folder's mean). Rules mark faces to reject (too blurry, another person, not among the best N spread
over head poses); `SortReport.apply` moves them into FACES_DIR/rejected/ (never deletes), where `train`
no longer sees them, and `restore_faces` moves them back.

Scores come from FACES_DIR/faces.json when extract stored them (blur, embedding, crop-space landmarks), so
a folder of thousands of faces sorts in seconds; a crop without an entry is scored from its pixels with the
same dlib models extract uses. faces.json is read as a stream (`alignments.stream_faces_json`), so memory holds
only what is scored (a 128-d vector and a few floats per face), not the whole index.

`report` (settings, scores, sort.json), `scorers` (the scorer registry), `run` (`sort_faces`), `moves`
(`apply` / `restore_faces`), `cli` (`veriswap sort`). Names resolve lazily (numpy/cv2 on first use).
"""
from __future__ import annotations

__all__ = ["REJECTED", "SCORERS", "FaceScore", "RestoreSummary", "SortReport", "SortSettings", "restore_faces",
           "sort_faces"]


def __getattr__(name: str):
    if name in ("REJECTED", "SORT_JSON", "FaceScore", "RestoreSummary", "SortReport", "SortSettings"):
        from . import report
        return getattr(report, name)
    if name in ("SCORERS",):
        from . import scorers
        return getattr(scorers, name)
    if name in ("sort_faces",):
        from . import run
        return getattr(run, name)
    if name in ("restore_faces",):
        from . import moves
        return getattr(moves, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

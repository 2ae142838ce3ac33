"""Real aligned faces (astronaut = A, Grace Hopper = B) in the extract stage's faces-folder contract."""
from __future__ import annotations

import json
from pathlib import Path

import cv2


def make_faces_dir(folder: Path, photo: str, size: int = 128) -> Path:
    from swap.faces import FaceAnalyzer
    from swap.samples import load_photo

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    face = FaceAnalyzer().analyze(load_photo(photo), size=size)[0]
    name = f"{photo}_000000_0.png"
    cv2.imwrite(str(folder / name), cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR))
    doc = {"version": 1, "size": size, "faces": {name: {
        "source": photo, "frame": 0, "face": 0,
        "landmarks": face.landmarks_crop.round(2).tolist(),
        "embedding": None if face.embedding is None else [float(v) for v in face.embedding],
        "blur": face.blur}}}
    (folder / "faces.json").write_text(json.dumps(doc))
    return folder

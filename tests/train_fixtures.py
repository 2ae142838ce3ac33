"""Real aligned faces (astronaut = A, Grace Hopper = B) in the extract stage's faces-folder contract.

On a machine without dlib's models (a lent GPU box), set VERISWAP_FACES_CACHE to a folder made here with
`python bench/train.py --make-faces DIR`: the faces are then copied from `DIR/<photo>_<size>/`."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2


def make_faces_dir(folder: Path, photo: str, size: int = 128) -> Path:
    folder = Path(folder)
    cache = os.environ.get("VERISWAP_FACES_CACHE")
    if cache and (Path(cache) / f"{photo}_{size}" / "faces.json").is_file():
        shutil.copytree(Path(cache) / f"{photo}_{size}", folder, dirs_exist_ok=True)
        return folder
    # only now: the GPU box has neither dlib's models nor PyAV (swap.samples imports it)
    from swap.faces import FaceAnalyzer
    from swap.samples import load_photo

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

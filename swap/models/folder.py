"""The model folder's file names, what its JSON files may hold, and the temp files a killed save leaves.

`checkpoint` (the reads and crash-safe writes) re-exports every name here; this module holds no torch.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import List, Tuple

from provenance import schema as S
from provenance.fsutil import temp_name

FORMAT = "veriswap-model"
VERSION = 1
WEIGHTS = "model.safetensors"
OPTIM = "optimizer.safetensors"
STATE = "state.json"
CONFIG = "config.json"
BAK = ".bak"


# what a reader accepts (provenance.schema: a wrong type is one line naming file and field)
_DIM = S.Int(1, 4096)
_IDENTITY = S.Obj(optional={"name": S.Opt(S.Str()), "faces_dir": S.Opt(S.Str()), "faces": S.Opt(S.Int(0)),
                            "embedding_centroid": S.Opt(S.Array((128,), what="a 128-d embedding"))},
                  what="an object (an identity)")
CONFIG_SPEC = S.Obj(
    {"architecture": S.Str(nonempty=True),
     "model_args": S.Map(S.OneOf(_DIM, S.List_(_DIM, max_len=64), what="a positive integer or a list of them"))},
    {"resolution": S.Int(8, 4096), "coverage": S.Num(0.05, 1.0), "has_mask": S.Bool(),
     "identities": S.Opt(S.Map(S.Opt(_IDENTITY), what="an object (a: ..., b: ...)")),
     "weights": S.Opt(S.Obj(optional={"file": S.Str(), "sha256": S.Str()})),
     "initialised_from": S.Opt(S.Obj(optional={"model_dir": S.Str(), "sha256": S.Str(), "parts": S.Str(("encoder", "all")),
                                             "iteration": S.Opt(S.Int(0))})),
     "training": S.Opt(S.Obj())}, what="an object (a model config)")
STATE_SPEC = S.Obj(
    {"files": S.Map(S.Str(), what="an object (file name -> sha256)")},
    {"iteration": S.Int(0), "elapsed": S.Opt(S.Num(0)), "saved_at": S.Opt(S.Str()), "reason": S.Opt(S.Str()),
     "rng": S.Opt(S.Obj(optional={"generators": S.Opt(S.List_(S.Str())), "torch": S.Opt(S.Str())})),
     "best": S.Opt(S.Obj({"iteration": S.Int(0), "loss": S.Num()})), "last_loss": S.Opt(S.Obj()),
     "identity_checks": S.Opt(S.List_(S.Obj()))}, what="an object (a checkpoint state)")


# files a training run writes at the top of its model folder through a temp file (`stage_bytes`,
# `atomic_write_bytes`: `.NAME.xxxxxxxx.tmp`), and the names `_link_or_copy` stages a backup under
OWN_FILES = (WEIGHTS, OPTIM, STATE, CONFIG, "preview.png", "loss.csv", "loss.png")


def stale_temps(model_dir: Path) -> List[Path]:
    """The temp files and folders a killed save left in a model folder (issue 16: 13 killed runs left 4.8 GB
    of `.model.safetensors.*.tmp` / `.optimizer.safetensors.*.tmp`). Matched by the exact patterns this
    module and the trainer write, nothing else: a user's own dot-files stay. Stale only while no writer
    holds the folder (swap.lock): `remove_stale_temps` runs under that lock."""
    d = Path(model_dir)
    if not d.is_dir():
        return []
    found: List[Path] = []
    for name in OWN_FILES:
        prefix, suffix = temp_name(d / name)
        found += d.glob(f"{_glob_escape(prefix)}*{suffix}")
        found += [d / f".{name}{BAK}.linktmp"] if (d / f".{name}{BAK}.linktmp").exists() else []
    for sub in ("snapshots", "timelapse"):
        if (d / sub).is_dir():
            found += [p for p in (d / sub).glob(".*.tmp")]       # .NNNNNNNN.tmp folders, .NNNNNNNN.png.x.tmp files
            found += [p for p in (d / sub).glob(".*.old") if p.is_dir()]
    found += [p for p in (d / ".best.tmp", d / ".best.old") if p.exists()]
    return sorted(set(found))


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _size(p: Path) -> int:
    if p.is_dir() and not p.is_symlink():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())
    try:
        return p.lstat().st_size
    except OSError:
        return 0


def temps_size(paths: List[Path]) -> int:
    """Bytes the given temp files/folders hold (a folder's files summed)."""
    return sum(_size(p) for p in paths)


def remove_stale_temps(model_dir: Path) -> Tuple[int, int]:
    """Delete what `stale_temps` finds; (count, bytes). Call only while holding the folder (swap.lock)."""
    paths = stale_temps(model_dir)
    size = temps_size(paths)
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return len(paths), size

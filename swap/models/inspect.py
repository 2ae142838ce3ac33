"""What a model folder holds and whether it is sound (faceswap's `tools model` nan-scan, plus the facts a
user looks up before a convert): architecture, identities, iteration, training time, last losses, and
for the current checkpoint and its backup whether their files match the recorded hashes and whether any
weight is NaN/inf. `veriswap model MODEL_DIR` prints it; a failed check is exit code 1.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import InputError
from . import checkpoint as mio


@dataclass
class CheckpointInfo:
    which: str                          # "current" | "backup"
    verified: bool                      # its files match state.json's hashes
    iteration: Optional[int] = None
    saved_at: Optional[str] = None
    reason: Optional[str] = None        # why it was saved: periodic, end, SIGTERM, requested, ...
    problem: Optional[str] = None       # hash mismatch / unreadable state
    nonfinite: List[str] = field(default_factory=list)   # weights holding NaN/inf

    @property
    def ok(self) -> bool:
        return self.verified and not self.nonfinite


@dataclass
class ModelInfo:
    folder: str
    architecture: str
    resolution: int
    parameters: int
    has_mask: bool
    coverage: float
    identities: Dict[str, Any]          # a/b: folder name and face count
    weights_sha256: Optional[str]
    elapsed_s: Optional[float]          # training time over all runs
    last_loss: Optional[Dict[str, Any]]
    identity_check: Optional[Dict[str, Any]]
    initialised_from: Optional[Dict[str, Any]]
    checkpoints: List[CheckpointInfo]
    snapshots: List[int]
    best: Optional[Dict[str, Any]] = None   # --keep-best: iteration and mean loss of best/
    stale_temps: List[str] = field(default_factory=list)   # temp files a killed save left (relative paths)
    stale_temps_bytes: int = 0
    in_use_by: Optional[str] = None     # a writer holding the folder now (then its temps may be a save in progress)

    @property
    def used(self) -> Optional[CheckpointInfo]:
        """The checkpoint train and convert load: the current one if its hashes match, else the backup."""
        return next((c for c in self.checkpoints if c.verified), None)

    @property
    def ok(self) -> bool:
        return self.used is not None and self.used.ok

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        for c, cd in zip(self.checkpoints, d["checkpoints"]):
            cd["ok"] = c.ok
        return d | {"ok": self.ok, "used": None if self.used is None else self.used.which}


def _nonfinite(path: Path) -> List[str]:
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return [k for k in f.keys() if not bool(torch.isfinite(f.get_tensor(k)).all())]


def _buildable(d: Path, cfg: Dict[str, Any]) -> None:
    """Refuse, as train and convert do (exit 2, file and field named), a config whose model_args pass the
    names and types but that the architecture cannot build (e.g. a resolution it cannot reach)."""
    from provenance.schema import SchemaError

    from .registry import create_model

    try:
        create_model(cfg["architecture"], **cfg["model_args"])
    except InputError as e:
        raise SchemaError(f"{d / mio.CONFIG}: field model_args: {e}") from None


def inspect_model(model_dir: Path) -> ModelInfo:
    d = Path(model_dir)
    if not d.is_dir():
        raise InputError(f"model folder not found: {d}")
    cfg = mio.read_config(d)
    _buildable(d, cfg)
    cks: List[CheckpointInfo] = []
    latest: Optional[Dict[str, Any]] = None
    for which, suffix in (("current", ""), ("backup", mio.BAK)):
        ck, problem = mio.verify_checkpoint(d, suffix)
        if ck is None and problem is None:
            continue                    # none of that kind (a model saved once has no backup)
        info = CheckpointInfo(which, ck is not None, problem=problem)
        if ck is not None:
            st = ck["state"]
            info.iteration, info.saved_at, info.reason = st.get("iteration"), st.get("saved_at"), st.get("reason")
            info.nonfinite = _nonfinite(ck["weights"])
            latest = latest or st
        cks.append(info)
    if not cks:
        raise InputError(f"{d} holds no checkpoint (config.json only)")
    snaps = sorted(int(p.name) for p in (d / "snapshots").iterdir()
                   if p.is_dir() and p.name.isdigit()) if (d / "snapshots").is_dir() else []
    idents = {k: {"name": (v or {}).get("name"), "faces": (v or {}).get("faces")}
              for k, v in (cfg.get("identities") or {}).items()}
    st = latest or {}
    info = ModelInfo(str(d), cfg["architecture"], int(cfg.get("resolution", 0)), 0, bool(cfg.get("has_mask")),
                     float(cfg.get("coverage", 1.0)), idents, (cfg.get("weights") or {}).get("sha256"),
                     st.get("elapsed"), st.get("last_loss"), (st.get("identity_checks") or [None])[-1],
                     cfg.get("initialised_from"), cks, snaps,
                     st.get("best") if (d / "best" / mio.STATE).is_file() else None)
    from ..lock import holder
    temps = mio.stale_temps(d)
    info.stale_temps = [str(p.relative_to(d)) for p in temps]
    info.stale_temps_bytes = mio.temps_size(temps)
    info.in_use_by = holder(d)
    if info.used is not None:
        from safetensors import safe_open
        with safe_open(str(d / (mio.WEIGHTS + ("" if info.used.which == "current" else mio.BAK))), framework="pt") as f:
            info.parameters = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return info

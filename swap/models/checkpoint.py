"""Model folder on disk: crash-safe checkpoints in safetensors, never an unpickle.

Files (top level of MODEL_DIR):
    model.safetensors       weights (float32)
    optimizer.safetensors   Adam state tensors keyed by parameter name; hyper-parameters in its metadata
    state.json              iteration, RNG states, timings, and the sha256 of the two files above
    config.json             format tag, architecture + args, resolution, coverage, identities, weights sha256
    *.bak                   the previous complete checkpoint (same three files)
    snapshots/NNNNNNNN/     optional copies at fixed iterations (`snapshot`), each a model folder itself

Save protocol (each step atomic; at every instant the top set or the .bak set verifies):
    1. write the new payload to temp files (fsync)
    2. drop state.json.bak, hard-link (or copy) the current payload to *.bak, then state.json -> state.json.bak
    3. os.replace the new payload into place, state.json last, then config.json
Loading verifies state.json's hashes against the payload and falls back to the .bak set. The file names, what
config.json/state.json may hold and the temp files a killed save leaves are in `folder` (re-exported here).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from provenance import schema as S
from provenance.fsutil import fsync_dir, stage_bytes

from ..errors import InputError

from .folder import (BAK, CONFIG, CONFIG_SPEC, FORMAT, OPTIM, OWN_FILES, STATE, STATE_SPEC, VERSION,  # noqa: F401
                     WEIGHTS, _DIM, remove_stale_temps, stale_temps, temps_size)

_replace = os.replace  # indirection: the crash tests pause here to kill -9 mid-save


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_tmp(folder: Path, name: str, data: bytes) -> Tuple[str, str]:
    return stage_bytes(folder, name, data, mode=0o644), hashlib.sha256(data).hexdigest()


_fsync_dir = fsync_dir


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.linktmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    _replace(tmp, dst)


def tensors_to_bytes(tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, metadata=metadata)


def optimizer_tensors(opt: torch.optim.Optimizer, names: Dict[int, str]) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Optimizer state keyed by parameter *name* (robust to ordering); hyper-params in JSON metadata."""
    sd = opt.state_dict()
    tensors: Dict[str, torch.Tensor] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"{names[idx]}::{k}"] = t.float() if t.is_floating_point() else t
    groups = [{k: v for k, v in g.items() if k != "params"} for g in sd["param_groups"]]
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in groups]
    return tensors, {"param_groups": json.dumps(groups), "format": FORMAT}


def load_optimizer(opt: torch.optim.Optimizer, names: Dict[int, str], path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        flat = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != FORMAT:
        raise InputError(f"{path.name} is not a veriswap optimizer state")
    by_name = {v: k for k, v in names.items()}
    state: Dict[int, Dict[str, Any]] = {}
    for key, t in flat.items():
        pname, _, k = key.rpartition("::")
        if pname not in by_name:
            raise InputError(f"optimizer state does not match the model (unknown parameter {pname})")
        state.setdefault(by_name[pname], {})[k] = t
    groups = json.loads(meta["param_groups"])
    cur = opt.state_dict()
    if len(groups) != len(cur["param_groups"]):
        raise InputError("optimizer state does not match the model (parameter groups differ)")
    for g, c in zip(groups, cur["param_groups"]):
        g["params"] = c["params"]
        for k, v in g.items():
            if isinstance(c.get(k), tuple):
                g[k] = tuple(v)
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(model_dir: Path, weights: Dict[str, torch.Tensor], optim: Optional[Tuple[Dict, Dict]],
                    state: Dict[str, Any], config: Dict[str, Any]) -> str:
    """Crash-safe save (see module doc). Returns the weights' sha256."""
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    w_tmp, w_sha = _write_tmp(d, WEIGHTS, tensors_to_bytes(weights, {"format": FORMAT}))
    payload = [(WEIGHTS, w_tmp, w_sha)]
    if optim is not None:
        o_tmp, o_sha = _write_tmp(d, OPTIM, tensors_to_bytes(*optim))
        payload.append((OPTIM, o_tmp, o_sha))
    state = dict(state, format=FORMAT, version=VERSION, files={n: s for n, _, s in payload})
    s_tmp, _ = _write_tmp(d, STATE, json.dumps(state, indent=1).encode())
    config = dict(config, format=FORMAT, version=VERSION, weights={"file": WEIGHTS, "sha256": w_sha})
    c_tmp, _ = _write_tmp(d, CONFIG, json.dumps(config, indent=1).encode())
    # 2. keep the current complete checkpoint as the backup
    if (d / STATE).exists():
        if (d / (STATE + BAK)).exists():
            (d / (STATE + BAK)).unlink()
        for name in (WEIGHTS, OPTIM):
            if (d / name).exists():
                _link_or_copy(d / name, d / (name + BAK))
        _link_or_copy(d / STATE, d / (STATE + BAK))
        _fsync_dir(d)
    # 3. new payload in place, state.json last (it names the payload's hashes)
    for name, tmp, _ in payload:
        _replace(tmp, d / name)
    _replace(s_tmp, d / STATE)
    _replace(c_tmp, d / CONFIG)
    _fsync_dir(d)
    return w_sha


def snapshot(model_dir: Path, dest: Path) -> Path:
    """Copy the folder's newest verified checkpoint and config.json to `dest`, itself a model folder (convert
    with it, or train on from it). Hard links where possible: a save only ever replaces files, never edits one."""
    d, dest = Path(model_dir), Path(dest)
    ck = find_checkpoint(d)
    if ck is None:
        raise InputError(f"{d} holds no checkpoint to snapshot")
    suffix = BAK if ck["backup"] else ""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = dest.with_name(f".{dest.name}.tmp"), dest.with_name(f".{dest.name}.old")
    for leftover in (tmp, old):   # from an interrupted earlier snapshot
        shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir()
    names = [WEIGHTS, STATE] + ([OPTIM] if ck["optimizer"] is not None else [])
    for name in names:
        _link_or_copy(d / (name + suffix), tmp / name)
    _link_or_copy(d / CONFIG, tmp / CONFIG)
    _fsync_dir(tmp)
    if dest.exists():   # the same iteration again (resumed from an earlier save): this run's copy wins
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(dest.parent)
    return dest


def _read_json(path: Path, spec: Optional[S.Spec] = None) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"unreadable {path.name} in {path.parent}: {e}") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path} is not a veriswap model file (foreign or corrupt checkpoint)")
    return data if spec is None else S.validate(data, spec, path)


def verify_checkpoint(d: Path, suffix: str = "") -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(checkpoint, None) when the checkpoint with this suffix ("" current, BAK backup) matches its recorded
    hashes, (None, why) when it does not, (None, None) when there is none."""
    sp = d / (STATE + suffix)
    if not sp.exists():
        return None, None
    try:
        state = _read_json(sp, STATE_SPEC)
    except InputError as e:
        return None, str(e)
    files = state.get("files") or {}
    if WEIGHTS not in files:
        return None, f"{sp.name} names no {WEIGHTS}"
    for name, sha in files.items():
        p = d / (name + suffix)
        if not p.exists() or sha256_file(p) != sha:
            return None, f"{p.name} does not match {sp.name} (interrupted save or corrupt file)"
    return {"state": state, "weights": d / (WEIGHTS + suffix),
            "optimizer": (d / (OPTIM + suffix)) if OPTIM in files else None, "backup": bool(suffix)}, None


def find_checkpoint(model_dir: Path) -> Optional[Dict[str, Any]]:
    """The newest checkpoint whose files match their recorded hashes: {"state", "weights", "optimizer",
    "backup"}; None when the folder holds no checkpoint at all; InputError when it holds only bad ones."""
    d = Path(model_dir)
    problems = []
    for suffix in ("", BAK):
        ck, problem = verify_checkpoint(d, suffix)
        if ck is not None:
            return ck
        if problem:
            problems.append(problem)
    if problems:
        raise InputError(f"no usable checkpoint in {d}: {problems[0]}")
    if (d / WEIGHTS).exists():
        raise InputError(f"{d} has {WEIGHTS} but no {STATE}: not a veriswap model folder")
    return None


def read_config(model_dir: Path) -> Dict[str, Any]:
    p = Path(model_dir) / CONFIG
    if not p.exists():
        raise InputError(f"{model_dir} is not a veriswap model folder (no {CONFIG})")
    cfg = _read_json(p, CONFIG_SPEC)
    from .registry import list_models, model_args

    if cfg["architecture"] not in list_models():
        raise S.SchemaError(f"{p}: field architecture: unknown model {cfg['architecture']!r} "
                            f"(this veriswap has {', '.join(list_models())})")
    try:
        model_args(cfg["architecture"], **cfg["model_args"])
    except InputError as e:
        raise S.SchemaError(f"{p}: field model_args: {e}") from None
    # each argument of the type the architecture's default has (an integer, or a list of them)
    defaults = model_args(cfg["architecture"])
    S.validate(cfg, S.Obj({"model_args": S.Obj(optional={
        k: S.List_(_DIM, max_len=64) if isinstance(v, (list, tuple)) else _DIM for k, v in defaults.items()})}), p)
    return cfg


def load_weights(model: torch.nn.Module, path: Path, architecture: str = "") -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        sd = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"corrupt weights file {path}: {e}") from e
    want = model.state_dict()
    missing = sorted(set(want) - set(sd))
    extra = sorted(set(sd) - set(want))
    bad = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or extra or bad:
        detail = (f"missing {missing[:2]}" if missing else f"unexpected {extra[:2]}" if extra
                  else f"shape mismatch at {bad[:2]}")
        raise InputError(f"{path.name} does not fit architecture {architecture!r}: {detail}")
    model.load_state_dict(sd)


def load_pretrained(model: torch.nn.Module, src_dir: Path, architecture: str, parts: str = "encoder") -> Dict[str, Any]:
    """Copy `parts` ("encoder" or "all") of another model folder's verified weights into a new `model`: its
    starting point (faceswap's --load-weights, DeepFaceLab's pretrained model). Returns the record kept in
    the new model's config.json as `initialised_from`."""
    from safetensors.torch import load_file

    src = Path(src_dir)
    if parts not in ("encoder", "all"):
        raise InputError(f"--load-parts must be encoder or all, got {parts!r}")
    scfg = read_config(src)
    if scfg["architecture"] != architecture:
        raise InputError(f"{src} holds a {scfg['architecture']!r} model, not {architecture!r}: "
                         f"train with --model {scfg['architecture']} to start from it")
    ck = find_checkpoint(src)
    if ck is None:
        raise InputError(f"{src} holds no trained weights")
    sd = load_file(str(ck["weights"]))
    want = model.state_dict()
    keys = [k for k in want if parts == "all" or k.startswith("encoder.")]
    bad = [k for k in keys if k not in sd or tuple(sd[k].shape) != tuple(want[k].shape)]
    if bad:
        raise InputError(f"the weights in {src} do not fit this model (at {bad[0]}): give the same "
                         f"--resolution/--e-dims/--ae-dims/--d-dims it was trained with")
    model.load_state_dict({k: sd[k] for k in keys}, strict=False)
    return {"model_dir": str(src.resolve()), "sha256": sha256_file(ck["weights"]), "parts": parts,
            "iteration": ck["state"].get("iteration")}


def load_model(model_dir, device="cpu"):
    """(model.eval() on device, config) from a model folder; config["weights"]["sha256"] is the hash of
    the weights actually loaded (verified against state.json), for provenance."""
    from .registry import create_model

    d = Path(model_dir)
    if not d.is_dir():
        raise InputError(f"no such model folder: {d}")
    cfg = read_config(d)
    ck = find_checkpoint(d)
    if ck is None:
        raise InputError(f"{d} holds no trained weights")
    try:
        model = create_model(cfg["architecture"], **cfg["model_args"])
    except InputError as e:     # e.g. a resolution the architecture cannot build: name the file and field
        raise S.SchemaError(f"{d / CONFIG}: field model_args: {e}") from None
    load_weights(model, ck["weights"], cfg["architecture"])
    cfg = dict(cfg, weights={"file": ck["weights"].name, "sha256": ck["state"]["files"][WEIGHTS]},
               iteration=ck["state"].get("iteration"))
    return model.to(torch.device(device)).eval(), cfg


@torch.no_grad()
def swap_crop(model, config: Dict[str, Any], crop_rgb: np.ndarray, direction: str = "a2b"):
    """Swap one aligned face crop (as written by extract, any size, RGB uint8).

    Returns (swapped RGB uint8 same size, mask float32 HxW in [0,1] or None for models without a mask head).
    The model sees the central `coverage` part of the crop resized to its resolution; outside that the
    crop is returned unchanged (and the mask is 0)."""
    return swap_crops(model, config, [crop_rgb], direction)[0]


@torch.no_grad()
def swap_crops(model, config: Dict[str, Any], crops: List[np.ndarray], direction: str = "a2b"
               ) -> List[Tuple[np.ndarray, Optional[np.ndarray]]]:
    """`swap_crop` for many crops in one forward pass (the weights are read once per batch, not per
    face: what makes convert fast on a GPU, and faster on a CPU too)."""
    import cv2

    if direction not in ("a2b", "b2a"):
        raise InputError("direction must be a2b or b2a")
    if not crops:
        return []
    dec = "b" if direction == "a2b" else "a"
    res = int(config["resolution"])
    cov = float(config.get("coverage", 1.0))
    inners, margins = [], []
    for crop in crops:
        h, w = crop.shape[:2]
        m = int(round(h * (1 - cov) / 2))
        inner = crop[m:h - m, m:w - m]
        margins.append(m)
        inners.append(cv2.resize(inner, (res, res),
                                 interpolation=cv2.INTER_AREA if inner.shape[0] > res else cv2.INTER_CUBIC))
    p = next(model.parameters())
    t = torch.from_numpy(np.stack(inners)).permute(0, 3, 1, 2).to(p.device, torch.float32) / 255.0
    face, mask = model(t, decoder=dec)
    faces = (face.permute(0, 2, 3, 1).float().clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    masks = None if mask is None else mask[:, 0].float().cpu().numpy()
    out = []
    for i, (crop, m) in enumerate(zip(crops, margins)):
        h, w = crop.shape[:2]
        size = (w - 2 * m, h - 2 * m)
        swapped = crop.copy()
        swapped[m:h - m, m:w - m] = cv2.resize(faces[i], size, interpolation=cv2.INTER_CUBIC)
        if masks is None:
            out.append((swapped, None))
            continue
        full = np.zeros((h, w), np.float32)
        full[m:h - m, m:w - m] = cv2.resize(masks[i], size, interpolation=cv2.INTER_LINEAR)
        out.append((swapped, np.clip(full, 0, 1)))
    return out

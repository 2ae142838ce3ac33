"""What the web app reads from its work folder for the pages: file listings, a swap project's state (faces
with their sort scores, the model's progress, the outputs with their labels and manifest), and the signing
identities' public parts. Read-only, except `default_key` (makes keys/local when there is no identity yet).
Every path comes from `Workdir`, so the security rules hold here too."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import tasks as T
from .jobs import JobManager, read_json
from .security import Workdir

VIDEO_EXT = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
KIND_EXT = {"video": VIDEO_EXT, "image": IMAGE_EXT, "media": VIDEO_EXT | IMAGE_EXT, "pem": {".pem", ".crt"},
            "key": {".key", ".pem", ".pub"}}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")   # a swap project or key folder name
PRUNE = {"faces", "model", "masks", "rejected", "snapshots", "timelapse", "best", "backup"}


def list_files(wd: Workdir, folder: Path, exts: Optional[set], recursive: bool = True, limit: int = 2000,
               prune: bool = False) -> List[Dict[str, Any]]:
    """Plain files under `folder` (never through a symlink, never hidden ones). `prune`: skip the stages' own
    working folders (face crops, model, masks, datasets), so a list of videos is the user's videos and outputs."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not os.path.islink(os.path.join(dirpath, d))
                             and not d.endswith(".parts")
                             and not (prune and (d in PRUNE or d.endswith(".labels")
                                                 or os.path.join(dirpath, d) == str(wd.root / T.DETECT / "datasets"))))
        for f in sorted(filenames):
            p = Path(dirpath) / f
            if f.startswith(".") or p.is_symlink() or (exts and p.suffix.lower() not in exts):
                continue
            st = p.stat()
            out.append({"path": wd.rel(p), "name": f, "size": st.st_size, "mtime": st.st_mtime})
            if len(out) >= limit:
                return out
        if not recursive:
            break
    return out


def load_project(wd: Workdir, name: str) -> Dict[str, Any]:
    p = wd.resolve(f"{T.SWAPS}/{name}/project.json")
    d = read_json(p)
    if d is None:
        raise KeyError(name)
    return d


def faces_info(wd: Workdir, rel: str, limit: int = 80) -> Dict[str, Any]:
    folder = wd.resolve(rel)
    if not folder.is_dir():
        return {"count": 0, "faces": [], "rejected": 0}
    doc = read_json(folder / "sort.json") or {}
    entries = doc.get("faces") or {}
    top = [f["name"] for f in list_files(wd, folder, IMAGE_EXT, recursive=False)]
    rej_dir = folder / "rejected"
    rejected = [f["name"] for f in list_files(wd, rej_dir, IMAGE_EXT, recursive=False)] if rej_dir.is_dir() else []
    order = [n for n in doc.get("ranking", []) if n in set(top)] or top
    seen = set(order)
    order += [n for n in top if n not in seen]
    show = order[:limit]

    def one(n: str, where: str) -> Dict[str, Any]:
        e = entries.get(n) or {}
        return {"file": n, "path": f"{rel}/{n}" if where == "top" else f"{rel}/rejected/{n}", "in": where,
                "identity": e.get("identity"), "blur": e.get("blur"), "reject": e.get("reject") or {}}
    return {"count": len(top), "rejected": len(rejected), "shown": len(show),
            "faces": [one(n, "top") for n in show] + [one(n, "rejected") for n in rejected[:24]],
            "sorted": bool(doc), "counts": doc.get("counts")}


def project_view(wd: Workdir, jobs: JobManager, name: str) -> Dict[str, Any]:
    proj = load_project(wd, name)
    P = T.project_paths(name)
    model = wd.resolve(P["model"])
    state = read_json(model / "state.json") or {}
    rows = T.read_loss_csv(model / "loss.csv", 300)
    outs = []
    out_dir = wd.resolve(P["out"])
    if out_dir.is_dir():
        for f in sorted(out_dir.glob("*.mp4")):
            if f.is_symlink() or f.name.startswith("."):
                continue
            labels = f.with_name(f.stem + ".labels") / "labels.json"
            manifest = f.with_name(f.stem + ".manifest.json")
            lab = read_json(labels) or {}
            src = lab.get("source")
            src = src.get("path") if isinstance(src, dict) else src
            if isinstance(src, str) and not os.path.isabs(src):
                src = str(wd.root / src)
            outs.append({"video": wd.rel(f), "labels": wd.rel(labels) if labels.is_file() else None,
                         "manifest": wd.rel(manifest) if manifest.is_file() else None,
                         "source": wd.rel(Path(os.path.realpath(src))) if isinstance(src, str) and _inside(wd, src)
                         and Path(src).is_file() else None,
                         "size": f.stat().st_size, "mtime": f.stat().st_mtime})
    preview = model / "preview.png"
    return {"project": proj, "paths": P,
            "faces": {"a": faces_info(wd, P["faces_a"]), "b": faces_info(wd, P["faces_b"])},
            "model": {"exists": (model / "state.json").is_file(), "iteration": state.get("iteration"),
                      "elapsed": state.get("elapsed"), "loss": rows, "its": T.train_speed(rows),
                      "preview": wd.rel(preview) if preview.is_file() else None,
                      "preview_mtime": preview.stat().st_mtime if preview.is_file() else None,
                      "identity_checks": (state.get("identity_checks") or [])[-1:]},
            "outputs": outs,
            "jobs": [j for j in jobs.list() if j.get("project") == name]}


def keys_info(wd: Workdir) -> List[Dict[str, Any]]:
    root = wd.resolve(T.KEYS)
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if d.is_symlink() or not d.is_dir() or not (d / "signer.pem").is_file():
            continue
        out.append(key_public(wd, d))
    return out

def key_public(wd: Workdir, d: Path) -> Dict[str, Any]:
    """The public parts only: certificates, fingerprints, public key. Never a private key's bytes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    def cert_info(p: Path) -> Optional[Dict[str, Any]]:
        if not p.is_file():
            return None
        c = x509.load_pem_x509_certificate(p.read_bytes())
        raw = c.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string(),
                "serial": str(c.serial_number), "not_before": c.not_valid_before_utc.isoformat(),
                "not_after": c.not_valid_after_utc.isoformat(),
                "sha256": c.fingerprint(hashes.SHA256()).hex(":").upper(), "public_key": raw.hex(),
                "pem": wd.rel(p)}
    from provenance.keys import key_is_encrypted
    return {"name": d.name, "dir": wd.rel(d), "root": cert_info(d / "root.pem"), "signer": cert_info(d / "signer.pem"),
            "anchor": wd.rel(d / "root.pem") if (d / "root.pem").is_file() else None,
            "encrypted": key_is_encrypted(d / "signer.key"), "has_tag_key": (d / "tag.key").is_file()}

def default_key(wd: Workdir) -> str:
    ks = keys_info(wd)
    if ks:
        return ks[0]["dir"]
    from provenance.keys import generate_identity
    d = wd.resolve(f"{T.KEYS}/local")
    generate_identity(d, name="veriswap local")
    return wd.rel(d)


def _inside(wd: Workdir, path: str) -> bool:
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return False
    return real == wd.root or wd.root in real.parents



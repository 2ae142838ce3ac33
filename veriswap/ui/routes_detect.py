"""The web app's Detect routes: what the Detect page reads from the work folder (the videos to build a
dataset from, sorted into real ones and labelled swaps; a detector's training curves while it trains and
after). Jobs (practice material, dataset, training, evaluation) start through /api/jobs like every other.
Mounted by server.create_app, which hands over the work folder and its helpers (`c`).

  GET /api/detect/videos                   {"real": [...], "fake": [...]}: videos of the work folder
  GET /api/detect/detector?path=DIR        a detector folder's curves: per-step loss, per-epoch val loss/AUC
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .jobs import read_json
from .security import Refused, Workdir
from .workfolder import VIDEO_EXT, list_files


def is_swap(wd: Workdir, rel: str) -> bool:
    """A labelled swap: convert's or graphic-swap's labels beside it (NAME.labels/labels.json), or a video in
    a swap's out/ folder."""
    p = wd.resolve(rel)
    return (p.with_name(p.stem + ".labels") / "labels.json").is_file() or "/out/" in f"/{rel}"


def detect_videos(wd: Workdir) -> Dict[str, List[Dict[str, Any]]]:
    out: Dict[str, List[Dict[str, Any]]] = {"real": [], "fake": []}
    for f in list_files(wd, wd.root, VIDEO_EXT, prune=True):
        labelled = is_swap(wd, f["path"])
        out["fake" if labelled else "real"].append({"path": f["path"], "labelled": labelled, "size": f["size"]})
    return out


def read_step_losses(path: Path, max_points: int = 400) -> List[List[float]]:
    """A detector's loss.csv (epoch, step, loss) as [[step, loss, epoch], ...], thinned to `max_points`."""
    try:
        with open(path, newline="") as f:
            rows = [[int(r["step"]), float(r["loss"]), int(r["epoch"])] for r in csv.DictReader(f)]
    except (OSError, ValueError, KeyError):
        return []
    if len(rows) > max_points:
        k = len(rows) / max_points
        rows = [rows[int(i * k)] for i in range(max_points - 1)] + [rows[-1]]
    return rows


def detector_view(wd: Workdir, rel: str) -> Dict[str, Any]:
    d = wd.resolve(rel, must_exist=True)
    if not d.is_dir():
        raise Refused("not a detector folder", 404)
    metrics = read_json(d / "metrics.json") or {}
    cfg = read_json(d / "config.json") or {}
    return {"path": wd.rel(d), "steps": read_step_losses(d / "loss.csv"), "history": metrics.get("history") or [],
            "best_epoch": metrics.get("best_epoch"), "arch": cfg.get("arch"), "input_size": cfg.get("input_size"),
            "threshold": cfg.get("threshold"), "epochs": cfg.get("epochs")}


def detect_routes(c: Any) -> List[Route]:
    """c: wd (Workdir), err(e)."""
    async def videos(request: Request):
        try:
            return JSONResponse(detect_videos(c.wd))
        except Exception as e:  # noqa: BLE001
            return c.err(e)

    async def detector(request: Request):
        try:
            return JSONResponse(detector_view(c.wd, request.query_params.get("path", "")))
        except Exception as e:  # noqa: BLE001
            return c.err(e)

    return [Route("/api/detect/videos", videos), Route("/api/detect/detector", detector)]

"""What each kind of job runs: one call of the library API (the same functions the CLI calls), with the
job's progress reported through `ctx`. No pipeline logic lives here: settings in, library call, the
summary out. Paths in a job's parameters are relative to the work folder (the worker runs there); the
server checks them (`Task.inputs` must exist inside it, `Task.outputs` must lie inside it) before a job
is created.

A "swap project" is a folder swaps/NAME/ holding the inputs the user chose, faces/a and faces/b (extract,
sort), model/ (train) and out/ (convert): the same folders the CLI would be given.
"""
from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .jobs import read_json, write_json
from .taskutil import (DETECT, KEYS, SWAPS, UPLOADS, Cancelled, Ctx, Task, plain,  # noqa: F401 - re-exported
                       progress, project_paths)
from .tasks_detect import run_detect_dataset, run_detect_eval, run_detect_samples, run_detect_train



# ---- swap ---------------------------------------------------------------------------------------------

def run_samples(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    """The built-in real faces (swap.samples): a clip of each person and A's reference photo."""
    from swap.samples import make_face_video, save_photo

    folder = Path(p["folder"])
    frames = int(p.get("frames", 50))
    out = {}
    for i, (key, photo) in enumerate((("a", "astronaut"), ("b", "grace_hopper"))):
        ctx.report(phase=f"making the {photo} clip", done=i, total=3)
        out[key] = str(make_face_video(folder / f"{photo}.mp4", photo, frames=frames))
    ctx.report(phase="reference photo", done=2, total=3)
    out["ref_a"] = str(save_photo("astronaut", folder / "astronaut_reference.png"))
    return out


def run_extract(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    """swap.extract for each person, then swap.sort by identity (sort.json written, nothing moved)."""
    from swap.extract import ExtractSettings, extract
    from swap.sort import SortSettings, sort_faces

    out = {}
    for person in ("a", "b"):
        inputs = [Path(x) for x in p[person]]
        ref = p.get(f"ref_{person}")
        s = extract(inputs, Path(p[f"faces_{person}"]), settings=ExtractSettings(size=int(p.get("size", 256)),
                    every=int(p.get("every", 1))), ref_face=Path(ref) if ref else None,
                    jobs=p.get("jobs"), progress=progress(ctx, f"extract {person.upper()}"))
        ctx.report(phase=f"sort {person.upper()}", done=0, total=None)
        rep = sort_faces(Path(p[f"faces_{person}"]), SortSettings(by="identity"))
        out[person] = {"frames_read": s.frames_read, "faces_written": s.faces_written, "faces_found": s.faces_found,
                       "faces_filtered": s.faces_filtered, "seconds": round(s.seconds, 2), "errors": s.errors,
                       "warnings": s.warnings, "sorted": len(rep.ranked)}
    return out


def run_sort(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    """swap.sort on one faces folder: score, apply the rules (move rejects into rejected/), or restore."""
    from swap.sort import SortSettings, restore_faces, sort_faces

    folder = Path(p["faces_dir"])
    if p.get("restore"):
        r = restore_faces(folder)
        sort_faces(folder, SortSettings(by=p.get("by") or "identity"))
        return {"restored": len(r.restored), "conflicts": r.conflicts}
    num = lambda k: None if p.get(k) in (None, "") else float(p[k])
    s = SortSettings(by=p.get("by") or "identity", max_distance=num("max_distance"), reject_blur=num("reject_blur"),
                     keep=None if p.get("keep") in (None, "") else int(p["keep"]))
    rep = sort_faces(folder, s, progress=progress(ctx, "sort"))
    moved = rep.apply() if p.get("apply", True) else []
    return {"counts": rep.counts(), "moved": moved, "warnings": rep.warnings}


def read_loss_csv(path: Path, max_rows: int = 400) -> List[Dict[str, float]]:
    """loss.csv rows (iteration, loss_a, loss_b, elapsed), thinned to at most `max_rows` (the last kept)."""
    try:
        with open(path, newline="") as f:
            rows = [{k: float(v) for k, v in r.items() if k and v not in (None, "")} for r in csv.DictReader(f)]
    except (OSError, ValueError):
        return []
    if len(rows) > max_rows:
        step = len(rows) / max_rows
        rows = [rows[int(i * step)] for i in range(max_rows - 1)] + [rows[-1]]
    return rows


def train_speed(rows: List[Dict[str, float]], window: int = 20) -> Optional[float]:
    """Iterations per second over the last `window` logged rows."""
    tail = [r for r in rows if "elapsed" in r][-window:]
    if len(tail) < 2 or tail[-1]["elapsed"] <= tail[0]["elapsed"]:
        return None
    return (tail[-1]["iteration"] - tail[0]["iteration"]) / (tail[-1]["elapsed"] - tail[0]["elapsed"])


TRAIN_TIME = "train_time.json"      # in a train job's folder (the worker writes it): seconds trained so far


class TrainClock:
    """A train job's time limit covers all its runs together: after Pause, Stop, a server restart or a crash,
    Resume trains only for what is left. The seconds counted are the trainer's own (its loop, as --time-limit
    counts them): recorded in the job's folder (TRAIN_TIME) while it runs, from loss.csv's `elapsed` column
    (cumulative over the model's runs, so this run's share is what passed the checkpoint's `elapsed`), and
    at its end from the summary. A run killed hard keeps what was recorded up to its last loss.csv write."""

    def __init__(self, jobdir: Path, model_dir: Path, limit: Optional[float]):
        self.path = Path(jobdir) / TRAIN_TIME
        self.limit = limit
        self.before = float((read_json(self.path) or {}).get("seconds", 0.0))
        self.start_elapsed = float((read_json(Path(model_dir) / "state.json") or {}).get("elapsed", 0.0))
        self.started = time.time()
        self.run_s = 0.0

    def remaining(self) -> Optional[float]:
        return None if self.limit is None else max(0.0, self.limit - self.before)

    @property
    def used(self) -> float:
        return self.before + self.run_s

    def seen(self, rows: List[Dict[str, float]], mtime: float) -> None:
        """loss.csv as read now (written at `mtime`): a file older than this run is an earlier run's."""
        el = [r["elapsed"] for r in rows if "elapsed" in r]
        if mtime >= self.started and el and el[-1] - self.start_elapsed > self.run_s:
            self.set(el[-1] - self.start_elapsed)

    def set(self, run_s: float) -> None:
        self.run_s = max(0.0, float(run_s))
        write_json(self.path, {"seconds": round(self.used, 3), "limit": self.limit})

    def eta(self, mtime: float) -> Optional[float]:
        left = self.remaining()
        if left is None:
            return None
        since = time.time() - mtime if self.run_s > 0 else 0.0
        return max(0.0, left - self.run_s - since)


def run_train(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    """swap.train: resumes from the model folder's checkpoint when there is one. SIGTERM (Pause/Stop) makes
    the trainer save and return, as Ctrl-C does on the CLI. The time limit is the job's (TrainClock)."""
    from swap.train import TrainConfig, train

    model_dir = Path(p["model_dir"])
    clock = TrainClock(ctx.jobdir, model_dir, float(p["time_limit"]) if p.get("time_limit") else None)
    left = clock.remaining()
    its = train_speed(read_loss_csv(model_dir / "loss.csv", 50))
    if left is not None and (left <= 0 or (its and left < 1.0 / its)):   # not even one step's time is left
        return {"stopped_by": "time limit", "iterations_run": 0, "time_used_s": round(clock.used, 1),
                "time_limit_s": clock.limit, "note": "the job's time limit was used up by its earlier runs"}
    cfg = TrainConfig(faces_a=p["faces_a"], faces_b=p["faces_b"], model_dir=str(model_dir),
                      model=p.get("model") or None, batch_size=int(p.get("batch_size", 8)),
                      iterations=int(p["iterations"]) if p.get("iterations") else None,
                      time_limit=left, save_every=int(p.get("save_every", 100)),
                      preview_every=int(p.get("preview_every", 10)), device=p.get("device", "auto"), progress=False)
    target, done_flag = cfg.iterations, threading.Event()

    def watch() -> None:      # progress from the files the trainer writes (loss.csv at each preview/save)
        while not done_flag.wait(1.0):
            rows = read_loss_csv(model_dir / "loss.csv", 50)
            if not rows:
                ctx.report(phase="starting the trainer", done=0, total=target, force=False)
                continue
            mtime = (model_dir / "loss.csv").stat().st_mtime
            clock.seen(rows, mtime)
            its, last = train_speed(rows), rows[-1]
            eta = clock.eta(mtime)
            if target and its:
                eta_it = (target - last["iteration"]) / its
                eta = eta_it if eta is None else min(eta, eta_it)
            ctx.report(phase="training", done=int(last["iteration"]), total=target, its=its, eta_s=eta,
                       loss_a=last.get("loss_a"), loss_b=last.get("loss_b"), time_used_s=round(clock.used, 1),
                       force=False)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    try:
        summary = train(cfg)
    finally:
        done_flag.set()
        th.join(5)
    summary = plain(summary)
    clock.set(summary.get("seconds") or clock.run_s)
    summary.update(time_used_s=round(clock.used, 1), time_limit_s=clock.limit)
    if summary.get("stopped_by") in ("SIGTERM", "SIGINT"):
        summary["_stopped"] = True
    return summary


def run_convert(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    """swap.convert (signed with the chosen identity), then the output's C2PA manifest as JSON beside it."""
    from provenance.c2pa_verify import verify_file
    from swap.convert import ConvertSettings, convert

    out = Path(p["out"])
    s = ConvertSettings(direction=p.get("direction", "a2b"), key_dir=p.get("key_dir"), device=p.get("device", "auto"),
                        color=p.get("color", "avg"))
    summary = convert(Path(p["video"]), Path(p["model_dir"]), out, alignments=Path(p["alignments"]) if p.get("alignments") else None,
                      settings=s, progress=progress(ctx, "convert"))
    ctx.report(phase="reading the manifest back", done=None, total=None)
    anchors = [str(Path(p["key_dir"]) / "root.pem")] if p.get("key_dir") and (Path(p["key_dir"]) / "root.pem").is_file() else []
    rep = verify_file(out, anchors)
    manifest = out.with_name(out.stem + ".manifest.json")
    manifest.write_text(rep.to_json())
    return {**plain(summary), "manifest_json": str(manifest), "c2pa_state": getattr(rep, "state", None)}


# ---- check --------------------------------------------------------------------------------------------

def run_check(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    """veriswap.check's check_file, then its HTML report page (the same the CLI writes with --html)."""
    from veriswap.check import CheckOptions, check_file, document
    from veriswap.check.report_html import file_page

    opts = CheckOptions(trust_anchors=list(p.get("trust_anchors") or []), tag_key=p.get("tag_key") or None,
                        detector=p.get("detector") or None, frames=int(p.get("frames", 16)), media=True,
                        device=p.get("device", "cpu"))
    ctx.report(phase="checking", done=None, total=None)
    rec = check_file(Path(p["path"]), opts)
    (ctx.jobdir / "report.html").write_text(file_page(rec))
    doc = document([rec])
    (ctx.jobdir / "check.json").write_text(json.dumps(doc, indent=1, default=str))
    v = rec["verdict"]
    return {"path": p["path"], "verdict": {k: v.get(k) for k in ("word", "headline", "trusted", "exit_code",
                                                                  "reasons", "conflicts")},
            "c2pa_state": (rec.get("c2pa") or {}).get("state"), "seconds": rec.get("seconds")}


TASKS: Dict[str, Task] = {
    "samples": Task(run_samples, "built-in sample faces", outputs=["folder"]),
    "extract": Task(run_extract, "extract faces", inputs=["a", "b", "ref_a", "ref_b"], outputs=["faces_a", "faces_b"]),
    "sort": Task(run_sort, "sort and clean faces", inputs=["faces_dir"]),
    "train": Task(run_train, "train", inputs=["faces_a", "faces_b"], outputs=["model_dir"]),
    "convert": Task(run_convert, "convert", inputs=["video", "model_dir", "alignments", "key_dir"], outputs=["out"]),
    "check": Task(run_check, "check", inputs=["path", "trust_anchors", "tag_key", "detector"]),
    "detect_samples": Task(run_detect_samples, "practice material for a detector", inputs=["key_dir"],
                           outputs=["folder"]),
    "detect_dataset": Task(run_detect_dataset, "detector dataset", inputs=["real", "fake"], outputs=["out"]),
    "detect_train": Task(run_detect_train, "train detector", inputs=["dataset", "weights"], outputs=["out"]),
    "detect_eval": Task(run_detect_eval, "evaluate detector", inputs=["dataset", "detector"]),
}

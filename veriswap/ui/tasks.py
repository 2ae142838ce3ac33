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
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

SWAPS = "swaps"
KEYS = "keys"
DETECT = "detect"
UPLOADS = "uploads"


def project_paths(name: str) -> Dict[str, str]:
    base = f"{SWAPS}/{name}"
    return {"base": base, "inputs": f"{base}/inputs", "faces_a": f"{base}/faces/a", "faces_b": f"{base}/faces/b",
            "model": f"{base}/model", "out": f"{base}/out"}


class Cancelled(Exception):
    """SIGTERM in a job other than train (the worker's handler raises it)."""


@dataclass
class Ctx:
    jobdir: Path
    report: Callable[..., None]                  # report(phase=..., done=..., total=..., **more)
    log: Callable[[str], None] = print


@dataclass
class Task:
    run: Callable[[Dict[str, Any], Ctx], Dict[str, Any]]
    title: str
    inputs: List[str] = field(default_factory=list)      # parameters naming existing files/folders (str or list)
    outputs: List[str] = field(default_factory=list)     # parameters naming where results go


def _plain(x: Any) -> Any:
    if is_dataclass(x):
        return {k: _plain(v) for k, v in asdict(x).items()}
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def _progress(ctx: Ctx, phase: str) -> Callable[..., None]:
    def cb(done: int, total: int, *rest: Any) -> None:
        ctx.report(phase=phase, done=int(done), total=int(total) if total else None)
    return cb


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
                    jobs=p.get("jobs"), progress=_progress(ctx, f"extract {person.upper()}"))
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
    rep = sort_faces(folder, s, progress=_progress(ctx, "sort"))
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


def run_train(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    """swap.train: resumes from the model folder's checkpoint when there is one. SIGTERM (Pause/Stop) makes
    the trainer save and return, as Ctrl-C does on the CLI."""
    from swap.train import TrainConfig, train

    model_dir = Path(p["model_dir"])
    limit = p.get("time_limit")
    cfg = TrainConfig(faces_a=p["faces_a"], faces_b=p["faces_b"], model_dir=str(model_dir),
                      model=p.get("model") or None, batch_size=int(p.get("batch_size", 8)),
                      iterations=int(p["iterations"]) if p.get("iterations") else None,
                      time_limit=float(limit) if limit else None, save_every=int(p.get("save_every", 100)),
                      preview_every=int(p.get("preview_every", 10)), device=p.get("device", "auto"), progress=False)
    t0, target, done_flag = time.time(), cfg.iterations, threading.Event()

    def watch() -> None:      # progress from the files the trainer writes (loss.csv at each preview/save)
        while not done_flag.wait(1.0):
            rows = read_loss_csv(model_dir / "loss.csv", 50)
            if not rows:
                ctx.report(phase="starting the trainer", done=0, total=target, force=False)
                continue
            its, last = train_speed(rows), rows[-1]
            eta = None
            if limit:
                eta = max(0.0, float(limit) - (time.time() - t0))
            if target and its:
                eta_it = (target - last["iteration"]) / its
                eta = eta_it if eta is None else min(eta, eta_it)
            ctx.report(phase="training", done=int(last["iteration"]), total=target, its=its, eta_s=eta,
                       loss_a=last.get("loss_a"), loss_b=last.get("loss_b"), force=False)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    try:
        summary = train(cfg)
    finally:
        done_flag.set()
    summary = _plain(summary)
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
                      settings=s, progress=_progress(ctx, "convert"))
    ctx.report(phase="reading the manifest back", done=None, total=None)
    anchors = [str(Path(p["key_dir"]) / "root.pem")] if p.get("key_dir") and (Path(p["key_dir"]) / "root.pem").is_file() else []
    rep = verify_file(out, anchors)
    manifest = out.with_name(out.stem + ".manifest.json")
    manifest.write_text(rep.to_json())
    return {**_plain(summary), "manifest_json": str(manifest), "c2pa_state": getattr(rep, "state", None)}


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


# ---- detect -------------------------------------------------------------------------------------------

def run_detect_dataset(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    from detect.dataset import DatasetSettings, build_dataset

    s = DatasetSettings(frames=int(p.get("frames", 16)))
    summary = build_dataset([Path(x) for x in p["real"]], [Path(x) for x in p["fake"]], Path(p["out"]), settings=s,
                            progress=_progress(ctx, "dataset"))
    return _plain(summary)


def run_detect_train(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    from detect.train import TrainSettings, train_detector

    weights = p.get("weights") or None
    s = TrainSettings(arch=p.get("arch") or "resnet10t", epochs=int(p.get("epochs", 5)),
                      batch_size=int(p.get("batch_size", 32)), input_size=int(p["input_size"]) if p.get("input_size") else None,
                      weights=weights, pretrained=bool(weights) or bool(p.get("pretrained", False)),
                      sbi=bool(p.get("sbi", False)), device=p.get("device", "auto"))

    def progress(epoch: int, step: int, steps: int, loss: float) -> None:
        ctx.report(phase=f"epoch {epoch}", done=(epoch - 1) * steps + step, total=s.epochs * steps,
                   loss=float(loss), force=False)
    return _plain(train_detector(Path(p["dataset"]), Path(p["out"]), s, progress=progress))


def run_detect_eval(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    import numpy as np

    from detect import metrics as M
    from detect.evaluate import evaluate

    rep = evaluate(Path(p["dataset"]), Path(p["detector"]), split=p.get("split", "test"),
                   progress=_progress(ctx, "evaluate"))
    d = rep.to_dict()
    vs = list(rep.per_video.values())
    y = np.array([v["label"] for v in vs])
    s = np.array([v["score"] for v in vs])
    if len(set(y.tolist())) == 2:
        fpr, tpr, _ = M.roc_curve(y, s)
        d["roc_video"] = {"fpr": [round(float(x), 5) for x in fpr], "tpr": [round(float(x), 5) for x in tpr]}
    return d


TASKS: Dict[str, Task] = {
    "samples": Task(run_samples, "built-in sample faces", outputs=["folder"]),
    "extract": Task(run_extract, "extract faces", inputs=["a", "b", "ref_a", "ref_b"], outputs=["faces_a", "faces_b"]),
    "sort": Task(run_sort, "sort and clean faces", inputs=["faces_dir"]),
    "train": Task(run_train, "train", inputs=["faces_a", "faces_b"], outputs=["model_dir"]),
    "convert": Task(run_convert, "convert", inputs=["video", "model_dir", "alignments", "key_dir"], outputs=["out"]),
    "check": Task(run_check, "check", inputs=["path", "trust_anchors", "tag_key", "detector"]),
    "detect_dataset": Task(run_detect_dataset, "detector dataset", inputs=["real", "fake"], outputs=["out"]),
    "detect_train": Task(run_detect_train, "train detector", inputs=["dataset", "weights"], outputs=["out"]),
    "detect_eval": Task(run_detect_eval, "evaluate detector", inputs=["dataset", "detector"]),
}

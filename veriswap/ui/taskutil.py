"""What every job kind shares (tasks.py and tasks_detect.py): the work folder's layout, the context a task runs
in (`Ctx`: its job folder and the progress callback), the registry record (`Task`), and small helpers that
turn library results into JSON and library progress callbacks into job progress."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List

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


def plain(x: Any) -> Any:
    """A library result (dataclasses, paths, tuples) as JSON-ready data."""
    if is_dataclass(x):
        return {k: plain(v) for k, v in asdict(x).items()}
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def progress(ctx: Ctx, phase: str) -> Callable[..., None]:
    """A library's progress(done, total, ...) callback reporting to the job."""
    def cb(done: int, total: int, *rest: Any) -> None:
        ctx.report(phase=phase, done=int(done), total=int(total) if total else None)
    return cb

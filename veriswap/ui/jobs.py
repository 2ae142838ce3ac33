"""Background jobs of the web app: records in WORKDIR/.veriswap-ui/jobs/ID/, one worker process each.

A job is one library call (`tasks.TASKS[kind]`) run by `python -m veriswap.ui.worker JOBDIR` in its own
process group (the page never blocks, a cancel reaches extract's pool workers too, and a job outlives a
crashed server). Two files per job, each with one writer:

- job.json     (the server): kind, parameters, title, project, what the user asked (`requested`), runs
- status.json  (the worker): state, phase, done/total, pid + process start time, result or error

The state shown is worked out from both: a status.json that says `running` whose process is gone is
`interrupted`. Jobs are the CLI's resumable jobs: "Resume" runs the same call again, and the library picks
up where the last run stopped (extract's finished chunks, train's checkpoint, convert's segments, a
detector's epochs). Train's "Pause" and "Stop" send SIGTERM, which the trainer answers by saving and
stopping (as Ctrl-C on the CLI); "Cancel" sends SIGTERM to the group, then SIGKILL after a grace period.
When the server stops it stops its running jobs the same way; they show as interrupted, ready to resume.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from provenance.fsutil import atomic_write_bytes

from .security import HIDDEN

ACTIVE = ("starting", "running", "stopping")
FINAL = ("done", "failed", "cancelled", "stopped", "paused", "interrupted")
GRACE_S = 20.0          # SIGTERM -> SIGKILL for a cancelled job (train saves a checkpoint first)


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        d = json.loads(Path(path).read_text())
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Dict[str, Any]) -> None:
    atomic_write_bytes(Path(path), (json.dumps(data, indent=1, default=str) + "\n").encode())


def proc_start_ticks(pid: int) -> Optional[int]:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid, it names one
    process (a pid reused by another process has another start time). None where there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
        fields = data[data.rfind(")") + 2:].split()
        if fields[0] == "Z":            # a zombie has finished
            return None
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        if sys.platform.startswith("linux"):
            return None
        try:                            # elsewhere: the pid alone
            os.kill(pid, 0)
            return 0
        except OSError:
            return None


def alive(pid: Optional[int], ticks: Optional[int]) -> bool:
    if not pid:
        return False
    t = proc_start_ticks(int(pid))
    return t is not None and (ticks is None or t == ticks or t == 0)


class StatusWriter:
    """The worker's side: status.json, written atomically (progress at most every `every` seconds)."""

    def __init__(self, jobdir: Path, every: float = 0.4):
        self.path = Path(jobdir) / "status.json"
        self.every = every
        self._last = 0.0
        self._lock = threading.Lock()
        self.data: Dict[str, Any] = {}

    def set(self, force: bool = True, **kv: Any) -> None:
        with self._lock:
            self.data.update(kv)
            self.data["updated"] = time.time()
            t = time.monotonic()
            if force or t - self._last >= self.every:
                self._last = t
                write_json(self.path, self.data)


class JobManager:
    """The server's side: create, list, cancel, pause, resume; reaps the processes it started."""

    def __init__(self, root: Path, python: Optional[str] = None):
        self.root = Path(root)
        self.dir = self.root / HIDDEN / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.python = python or sys.executable
        self._procs: Dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    # -- records --------------------------------------------------------------------------------
    def jobdir(self, job_id: str) -> Path:
        if not job_id or not all(c.isalnum() or c == "-" for c in job_id):
            raise KeyError(job_id)
        d = self.dir / job_id
        if not (d / "job.json").is_file():
            raise KeyError(job_id)
        return d

    def get(self, job_id: str) -> Dict[str, Any]:
        d = self.jobdir(job_id)
        job = read_json(d / "job.json") or {}
        st = read_json(d / "status.json") or {}
        return self._view(job, st)

    def _view(self, job: Dict[str, Any], st: Dict[str, Any]) -> Dict[str, Any]:
        self._reap()
        state = st.get("state") or "starting"
        running = alive(st.get("pid"), st.get("pid_ticks")) or (
            st.get("pid") is None and job["id"] in self._procs and self._procs[job["id"]].poll() is None)
        if state in ACTIVE and not running:
            if job["id"] in self._procs and self._procs[job["id"]].poll() is None:
                state = "starting"
            else:
                state = {"pause": "paused", "stop": "stopped", "cancel": "cancelled"}.get(job.get("requested"),
                                                                                          "interrupted")
        elif state in ACTIVE and job.get("requested") in ("pause", "stop", "cancel"):
            state = "stopping"
        if state == "stopped" and job.get("requested") == "pause":
            state = "paused"
        if state == "stopped" and job.get("requested") == "cancel":
            state = "cancelled"
        view = {**job, **{k: v for k, v in st.items() if k not in ("state",)}, "state": state}
        view["active"] = state in ACTIVE
        view["can_resume"] = state in ("paused", "interrupted", "failed", "cancelled", "stopped") and \
            job.get("resumable", True)
        return view

    def list(self, limit: int = 200) -> List[Dict[str, Any]]:
        out = []
        for d in sorted(self.dir.iterdir(), key=lambda p: p.name, reverse=True)[:limit]:
            job = read_json(d / "job.json")
            if job:
                out.append(self._view(job, read_json(d / "status.json") or {}))
        return out

    # -- actions --------------------------------------------------------------------------------
    def create(self, kind: str, params: Dict[str, Any], title: str, project: Optional[str] = None,
               resumable: bool = True) -> Dict[str, Any]:
        job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        d = self.dir / job_id
        d.mkdir(parents=True)
        job = {"id": job_id, "kind": kind, "title": title, "params": params, "project": project,
               "created": now_iso(), "requested": None, "runs": 0, "resumable": resumable}
        write_json(d / "job.json", job)
        self._start(d, job)
        return self.get(job_id)

    def _start(self, d: Path, job: Dict[str, Any]) -> None:
        job["runs"] = int(job.get("runs", 0)) + 1
        job["requested"] = None
        write_json(d / "job.json", job)
        write_json(d / "status.json", {"state": "starting", "updated": time.time(), "run": job["runs"]})
        log = open(d / "log.txt", "ab")
        log.write(f"--- run {job['runs']} {now_iso()}\n".encode())
        log.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1", OPENCV_LOG_LEVEL="SILENT")
        p = subprocess.Popen([self.python, "-m", "veriswap.ui.worker", str(d)], cwd=str(self.root), stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        log.close()
        with self._lock:
            self._procs[job["id"]] = p

    def _signal(self, job_id: str, sig: int) -> bool:
        st = read_json(self.jobdir(job_id) / "status.json") or {}
        pid = st.get("pid")
        if pid and alive(pid, st.get("pid_ticks")):
            try:
                os.killpg(int(pid), sig)        # the worker leads its own group: extract's pool goes too
            except ProcessLookupError:
                return False
            except PermissionError:
                os.kill(int(pid), sig)
            return True
        p = self._procs.get(job_id)
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            return True
        return False

    def request(self, job_id: str, action: str) -> Dict[str, Any]:
        """action: 'cancel' | 'pause' | 'stop' (train: save and stop) | 'resume'."""
        d = self.jobdir(job_id)
        job = read_json(d / "job.json") or {}
        view = self.get(job_id)
        if action == "resume":
            if view["active"]:
                return view
            if not view["can_resume"]:
                raise ValueError(f"a {view['state']} job cannot be resumed")
            self._start(d, job)
            return self.get(job_id)
        if action not in ("cancel", "pause", "stop"):
            raise ValueError(f"unknown action {action!r}")
        if action == "pause" and job.get("kind") != "train":
            raise ValueError("only training can be paused (the others resume from where they stopped: cancel them)")
        if not view["active"]:
            return view
        job["requested"] = action
        write_json(d / "job.json", job)
        if self._signal(job_id, signal.SIGTERM) and action == "cancel":
            threading.Thread(target=self._kill_later, args=(job_id,), daemon=True).start()
        return self.get(job_id)

    def _kill_later(self, job_id: str, grace: float = GRACE_S) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < grace:
            time.sleep(0.25)
            if not self.get(job_id)["active"]:
                return
        self._signal(job_id, signal.SIGKILL)

    def _reap(self) -> None:
        with self._lock:
            for k, p in list(self._procs.items()):
                if p.poll() is not None:
                    del self._procs[k]

    def stop_all(self, wait: float = 15.0) -> None:
        """On server shutdown: SIGTERM every job this server started (train saves), wait a little, then kill."""
        with self._lock:
            procs = dict(self._procs)
        for job_id, p in procs.items():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass
        t0 = time.monotonic()
        for p in procs.values():
            try:
                p.wait(max(0.1, wait - (time.monotonic() - t0)))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass

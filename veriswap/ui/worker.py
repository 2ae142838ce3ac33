"""One job's process: `python -m veriswap.ui.worker JOBDIR` (started by jobs.JobManager in the work folder,
in its own process group). Reads job.json, runs `tasks.TASKS[kind]` (one library call), and keeps
status.json up to date: state, phase, done/total, then the result or a one-line error. SIGTERM stops it:
train saves and returns (its own handler), every other task stops at once (the library's resumable parts
stay on disk for a resume).
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

from .jobs import StatusWriter, now_iso, proc_start_ticks, read_json
from .tasks import TASKS, Cancelled, Ctx


def _one_line(e: BaseException) -> str:
    msg = str(e) or type(e).__name__
    if isinstance(e, OSError) and getattr(e, "filename", None) and str(e.filename) not in msg:
        msg = f"{msg}: {e.filename}"
    return msg.strip().splitlines()[0] if msg.strip() else type(e).__name__


def main(jobdir: str) -> int:
    d = Path(jobdir)
    job = read_json(d / "job.json")
    if not job:
        print(f"no job record in {d}", file=sys.stderr)
        return 2
    st = StatusWriter(d)
    st.set(state="running", pid=os.getpid(), pid_ticks=proc_start_ticks(os.getpid()), started=now_iso(),
           run=job.get("runs", 1), phase="starting", done=None, total=None, error=None, result=None)
    task = TASKS.get(job["kind"])
    if task is None:
        st.set(state="failed", error=f"unknown job kind {job['kind']!r}")
        return 2

    def on_term(signum, frame):
        raise Cancelled("stopped")
    signal.signal(signal.SIGTERM, on_term)      # train replaces it with its own while it runs (save, then stop)

    def report(force: bool = True, **kv):
        st.set(force=force, **kv)
    t0 = time.monotonic()
    try:
        result = task.run(dict(job.get("params") or {}), Ctx(jobdir=d, report=report))
        stopped = bool(result.pop("_stopped", False)) if isinstance(result, dict) else False
        st.set(state="stopped" if stopped else "done", result=result, phase="stopped" if stopped else "done",
               seconds=round(time.monotonic() - t0, 2), ended=now_iso())
        return 0
    except (Cancelled, KeyboardInterrupt):
        st.set(state="stopped", phase="stopped", seconds=round(time.monotonic() - t0, 2), ended=now_iso())
        return 130
    except Exception as e:  # noqa: BLE001 - a job's failure is a one-line error on its card; the traceback goes to its log
        traceback.print_exc()
        st.set(state="failed", error=_one_line(e), seconds=round(time.monotonic() - t0, 2), ended=now_iso())
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Batch mode: folders searched recursively, files checked on all cores (`jobs`), results appended to a
results file as they arrive so an interrupted run continues where it stopped, a progress bar, a summary.

Results file (JSON lines): a header line {"schema": "veriswap.check.results", "version": 1, "options": FP}
then one FILE record per line with "_key": [absolute path, size, mtime_ns]. A re-run with the same
options (FP: check options, anchor/key/detector file contents) reuses every record whose file is unchanged
and checks only the rest; different options start the file over. A half-written last line is ignored.
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .core import check_file
from .evidence import VIDEO_EXTS
from .options import CheckInputError, CheckOptions

RESULTS_SCHEMA = "veriswap.check.results"
RESULTS_VERSION = 1
# files that belong to veriswap's own outputs, never evidence on their own
OWN_SUFFIXES = (".tags", ".labels.json", ".jsonl", ".safetensors")


def readable_exts() -> set:
    """Every extension some part of check reads: c2pa's supported types, plus videos (tags, detector)."""
    import c2pa

    exts = set(VIDEO_EXTS)
    for t in c2pa.Reader.get_supported_mime_types():
        if "/" not in t:
            exts.add("." + t.lower())
        else:
            exts.update(e.lower() for e in mimetypes.guess_all_extensions(t))
    return exts


def expand(inputs: Sequence[Path]) -> Tuple[List[Path], Dict[str, int]]:
    """Files to check (folders recursively, in sorted order, each file once) and what was skipped, by
    reason. A named file is always checked; a missing input is bad usage (exit 2)."""
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise CheckInputError(f"no such file or folder: {', '.join(missing)}")
    exts = readable_exts()
    files: List[Path] = []
    seen: set = set()
    skipped: Dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    def add(p: Path) -> None:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            files.append(p)

    for root in map(Path, inputs):
        if root.is_file():
            add(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            # convert's labels folders (OUT.labels/: labels.json + per-frame mask PNGs) are records of
            # a swap, not media to judge: skipped whole, their files counted
            for d in dirnames:
                if d.endswith(".labels"):
                    n = sum(len(f) for _, _, f in os.walk(Path(dirpath) / d))
                    skipped["veriswap labels folder (masks, labels)"] = \
                        skipped.get("veriswap labels folder (masks, labels)", 0) + n
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not d.endswith(".labels"))
            for name in sorted(filenames):
                p = Path(dirpath) / name
                low = name.lower()
                if name.startswith("."):
                    skip("hidden file")
                elif low.endswith(OWN_SUFFIXES):
                    skip("veriswap sidecar (tags, labels, results)")
                elif p.suffix.lower() not in exts:
                    skip(f"type nothing here reads ({p.suffix.lower() or 'no extension'})")
                elif not p.is_file():
                    skip("not a regular file")
                else:
                    add(p)
    return files, skipped


def default_results_path(inputs: Sequence[Path], opts: CheckOptions) -> Path:
    home = os.environ.get("VERISWAP_HOME") or str(Path.home() / ".veriswap")
    ident = hashlib.sha256(json.dumps(sorted(os.path.realpath(p) for p in inputs)).encode()).hexdigest()[:12]
    return Path(home) / "check" / f"results-{ident}.jsonl"


def _key(p: Path) -> List[Any]:
    st = p.stat()
    return [os.path.realpath(p), st.st_size, st.st_mtime_ns]


class ResultsFile:
    """Append-only JSON-lines store of finished records (see the module docstring)."""

    def __init__(self, path: Path, fingerprint: str, fresh: bool = False):
        self.path = Path(path)
        self.fp = fingerprint
        self.done: Dict[str, Dict[str, Any]] = {}
        self.note = ""
        if self.path.exists() and not fresh:
            self._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.done:
            with open(self.path, "w", encoding="utf-8") as f:
                f.write(json.dumps({"schema": RESULTS_SCHEMA, "version": RESULTS_VERSION, "options": self.fp}) + "\n")
        self._f = open(self.path, "a", encoding="utf-8")

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            raw = f.read()
        if not raw.endswith(b"\n"):         # cut mid-line by an interrupted run: drop the partial line
            raw = raw[:raw.rfind(b"\n") + 1]
            with open(self.path, "r+b") as f:
                f.truncate(len(raw))
        lines = raw.decode("utf-8", errors="replace").split("\n")
        try:
            head = json.loads(lines[0])
        except (ValueError, IndexError):
            self.note = "results file unreadable: starting over"
            return
        if head.get("schema") != RESULTS_SCHEMA or head.get("options") != self.fp:
            self.note = "options changed since the results file was written: starting over"
            return
        for line in lines[1:]:
            try:
                r = json.loads(line)
            except ValueError:
                continue                # a line cut by an interrupted run
            if isinstance(r, dict) and isinstance(r.get("_key"), list):
                self.done[r["_key"][0]] = r

    def reusable(self, p: Path) -> Optional[Dict[str, Any]]:
        r = self.done.get(os.path.realpath(p))
        try:
            return r if r is not None and r["_key"] == _key(p) else None
        except OSError:
            return None

    def add(self, rec: Dict[str, Any]) -> None:
        self._f.write(json.dumps(rec, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


# ---- workers ---------------------------------------------------------------------------------------

_OPTS: Dict[str, Any] = {}


class _WorkerStderr:
    """A worker's stderr: once the command is gone, the first write (the BrokenPipeError traceback of a
    result nobody can receive) ends the worker quietly instead."""

    def __init__(self, real: Any, command: int):
        self._real, self._command = real, command

    def write(self, text: str) -> int:
        try:
            os.kill(self._command, 0)
        except OSError:
            os._exit(1)
        return self._real.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _die_with_parent(command: int, forked: bool) -> None:
    """A worker ends the moment the command does, even one killed outright (SIGKILL, the OOM killer, a
    closed session) while this worker is mid-file: Linux's PR_SET_PDEATHSIG (tied to the parent: the
    command, or for forkserver workers the fork server, which exits with the command). Without it a
    worker would finish its file and then print a BrokenPipeError traceback on the user's terminal."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if forked and os.getppid() != command:      # the command died before the line above ran
        os._exit(1)
    sys.stderr = _WorkerStderr(sys.stderr, command)


def _native_threads() -> int:
    """Threads of this process that Python did not start (a native library's pool); -1: unknown."""
    try:
        return len(os.listdir("/proc/self/task")) - threading.active_count()
    except OSError:
        return -1


def _pool_context(detector: bool):
    """fork is the cheapest start for C2PA-only workers, but only safe while this process runs no native
    threads: c2pa's library keeps a thread pool once it has read some formats (after a PDF, a forked
    worker deadlocks inside c2pa's reader), and torch (the detector) is not fork-safe once its threads
    run. Otherwise workers come from a clean process: forkserver (cheap after the first), or spawn."""
    methods = mp.get_all_start_methods()
    if not detector and "fork" in methods and _native_threads() == 0:
        return mp.get_context("fork")
    if not detector and "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, "provenance.c2pa_verify"])    # c2pa's library loaded once
        return ctx
    return mp.get_context("spawn")


def _init_worker(opts: Dict[str, Any], torch_threads: int, command: int, forked: bool) -> None:
    _die_with_parent(command, forked)
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the command's: it stops the pool
    _OPTS["opts"] = CheckOptions(**opts)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    if opts.get("detector"):
        import torch

        torch.set_num_threads(torch_threads)


def _work(path: str) -> Dict[str, Any]:
    rec = check_file(path, _OPTS["opts"], parallel=True)
    try:
        rec["_key"] = _key(Path(path))
    except OSError:
        rec["_key"] = [os.path.realpath(path), None, None]
    return rec


def check_paths(inputs: Sequence[Path], opts: CheckOptions, jobs: Optional[int] = None,
                results: Optional[Path] = None, fresh: bool = False,
                progress: Optional[Callable[[int, int, Dict[str, Any]], None]] = None,
                on_note: Optional[Callable[[str], None]] = None, start_method: Optional[str] = None
                ) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    """Check every file under `inputs`; returns (records in input order, skipped counts). `jobs`:
    processes (default: all cores); `results`: the resumable results file (None: keep nothing);
    `start_method`: how workers start (default: the cheapest that is safe here, see _pool_context)."""
    files, skipped = expand(inputs)
    if opts.tags and len(files) != 1:
        raise CheckInputError("--tags names the tag file of one video; with several files each video's "
                              "VIDEO.tags sidecar is used")
    if opts.detector:
        from detect.model import DetectorConfig

        DetectorConfig.load(Path(opts.detector))        # a bad detector folder: exit 2 before any work
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    store = ResultsFile(results, opts.fingerprint(), fresh) if results else None
    if store and store.note and on_note:
        on_note(store.note)
    by_path: Dict[str, Dict[str, Any]] = {}
    todo: List[str] = []
    for p in files:
        r = store.reusable(p) if store else None
        if r is not None:
            by_path[str(p)] = dict(r, path=str(p))
        else:
            todo.append(str(p))
    done = len(by_path)
    total = len(files)
    if store and done and on_note:
        on_note(f"resuming: {done} of {total} files already checked ({store.path})")
    if progress:
        progress(done, total, {})

    def finish(rec: Dict[str, Any]) -> None:
        nonlocal done
        by_path[rec["path"]] = rec
        if store:
            store.add(rec)
        done += 1
        if progress:
            progress(done, total, rec)
    try:
        if jobs == 1 or len(todo) <= 1:
            _OPTS["opts"] = opts
            for p in todo:
                finish(_work(p))
        else:
            jobs = min(jobs, len(todo))
            ctx = mp.get_context(start_method) if start_method else _pool_context(bool(opts.detector))
            threads = max(1, (os.cpu_count() or 1) // jobs)
            chunk = max(1, min(16, len(todo) // (jobs * 8)))
            forked = ctx.get_start_method() != "forkserver"       # the command is the workers' parent
            with ctx.Pool(jobs, initializer=_init_worker,
                          initargs=(asdict(opts), threads, os.getpid(), forked)) as pool:
                for rec in pool.imap_unordered(_work, todo, chunksize=chunk):
                    finish(rec)
    except KeyboardInterrupt:
        if store and on_note:
            on_note(f"interrupted: {done} of {total} files checked and kept in {store.path}; "
                    "the same command continues from there")
        raise
    finally:
        if store:
            store.close()
    return [by_path[str(p)] for p in files], skipped


# the "not trusted" list, worst first: proof of tampering, then broken signatures, then the rest
_WORST = ("tampered", "signature not valid", "AI swap (watermark)", "unsigned + detector result", "unreadable",
          "signed, AI declared", "signed capture", "cannot tell")


def _severity(r: Dict[str, Any]) -> tuple:
    w = r["verdict"]["word"]
    rank = next((i for i, k in enumerate(_WORST) if w.startswith(k)), len(_WORST))
    return (rank, -int("likely manipulated" in r["verdict"]["headline"]), r["path"])


def summary_table(records: List[Dict[str, Any]], skipped: Dict[str, int], console=None, list_max: int = 25):
    """A one-screen summary: a count per verdict word, then the files that are not trusted."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"veriswap check: {len(records)} file(s)", title_justify="left")
    t.add_column("verdict")
    t.add_column("files", justify="right")
    t.add_column("exit", justify="right")
    counts: Dict[tuple, int] = {}
    for r in records:
        v = r["verdict"]
        k = (v["word"] + ("" if v["trusted"] or v["word"] not in ("signed capture", "signed, AI declared")
                          else " (not trusted)"), v["exit_code"])
        counts[k] = counts.get(k, 0) + 1
    for (w, code), n in sorted(counts.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][0])):
        t.add_row(w, str(n), str(code))
    console.print(t)
    bad = sorted((r for r in records if not r["verdict"]["trusted"]), key=_severity)
    if bad and len(records) > 1:
        try:                    # paths under the folder checked: the part that tells files apart
            base = os.path.commonpath([os.path.dirname(os.path.abspath(r["path"])) for r in records])
        except ValueError:
            base = ""
        t2 = Table(title=f"not trusted ({len(bad)}, worst first)" + (f", in {base}" if base else ""),
                   title_justify="left")
        t2.add_column("file", overflow="fold")
        t2.add_column("verdict", overflow="fold")
        for r in bad[:list_max]:
            t2.add_row(os.path.relpath(os.path.abspath(r["path"]), base) if base else r["path"],
                       r["verdict"]["headline"])
        if len(bad) > list_max:
            t2.add_row(f"... {len(bad) - list_max} more", "")
        console.print(t2)
    if skipped:
        console.print("skipped: " + "; ".join(f"{n} {why}" for why, n in sorted(skipped.items())))

"""`check_file`: one file -> one record (evidence + verdict), the unit that batch mode runs in parallel."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Union

from .evidence import _one_line, _user_error, gather, kind_of
from .options import CheckOptions
from .verdict import decide


def check_file(path: Union[str, Path], opts: CheckOptions | None = None, parallel: bool = True) -> Dict[str, Any]:
    """Evidence and verdict for one file, as the JSON schema's FILE record (report_json.py).
    Unreadable input becomes verdict "unreadable" (exit code 2) in the record, never an exception;
    bugs still raise."""
    opts = opts or CheckOptions()
    path = Path(path)
    t0 = time.perf_counter()
    rec: Dict[str, Any] = {"path": str(path), "kind": kind_of(path), "size": None, "seconds": 0.0, "error": None}
    try:
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        rec["size"] = path.stat().st_size
        rec.update(gather(path, opts, parallel))
        read = [k for k in ("tags", "detector") if (rec.get(k) or {}).get("status") in ("checked", "no-face", "no-key")]
        if (rec.get("c2pa") or {}).get("status") == "unsupported" and not read:
            rec["error"] = rec["c2pa"].get("detail") or "no check here can read this file"
    except Exception as e:  # noqa: BLE001 - only the user's bad input is turned into a record
        if not (_user_error(e) or isinstance(e, OSError)):
            raise
        rec["error"] = _one_line(e)
    rec["verdict"] = decide(rec)
    rec["seconds"] = round(time.perf_counter() - t0, 4)
    order = ["path", "kind", "size", "seconds", "verdict", "c2pa", "tags", "detector", "watermark", "error", "media"]
    return {k: rec[k] for k in order if k in rec} | {k: v for k, v in rec.items() if k not in order}

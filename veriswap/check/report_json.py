"""The JSON report of `veriswap check --json`: a stable, versioned schema (documented in docs/check.md).

    {
      "schema": "veriswap.check", "schema_version": 1,
      "exit_code": 0 | 1 | 2,
      "summary": {"files": N, "by_word": {"signed capture": n, ...}, "trusted": n, "skipped": {...}},
      "files": [FILE, ...]
    }

FILE:
    {
      "path": str, "kind": "video"|"image"|"audio"|"document"|"other", "size": int, "seconds": float,
      "verdict":  {"word": one of verdict.WORDS, "headline": str, "trusted": bool, "exit_code": 0|1|2,
                   "reasons": [str], "conflicts": [str]},
      "c2pa":     {"status", "state", "trusted", "signer", "issuer", "signed_at", "ai_declared",
                   "digital_source_types", "tampered", "failures": [{"code", "words"}], "notes", "report": {...}},
      "tags":     {"status", "path", "ok", "mode", "frames_tagged", "frames_video", "counts", "strip",
                   "flagged": [{"position", "status", "video_frame"}], "flagged_total", "problems", "report": {...}},
      "detector": {"status", "verdict": "FAKE"|"REAL"|"UNCERTAIN", "basis", "score", "threshold",
                   "frames_sampled", "frames_flagged", "flagged_frames", "tracks", "timeline": [{"frame", "time",
                   "prob", "faces"}], "warnings"},
      "watermark": {"status", "found", "payload", "z", "bit_confidence", "frames_total", "frames_found", "frames",
                    "store", "store_entries", "recovered": null | {"state", "verified", "trusted", "signer",
                    "signed_at", "ai_declared", "ai_declaration", "model", "source", "problems", "report": {...}}},
      "error": str | null
    }

`status` of each piece: checked | absent | not-applicable | unsupported | no-key | no-face | error.
`c2pa.report` is provenance's own verify report (its own `report_version`/`schema_version` inside) and
`tags.report` provenance's tag check report; both are passed through unchanged. Keys are only ever added
within a schema_version; a removal or a change of meaning bumps it.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any, Dict, List, Optional

SCHEMA = "veriswap.check"
SCHEMA_VERSION = 1
PRIVATE = ("media",)                    # pictures for the HTML report: not part of the JSON schema


def public(record: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in record.items() if k not in PRIVATE and not k.startswith("_")}


def summary(records: List[Dict[str, Any]], skipped: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    words = Counter(r["verdict"]["word"] for r in records)
    return {"files": len(records), "by_word": dict(sorted(words.items())),
            "trusted": sum(1 for r in records if r["verdict"]["trusted"]),
            "frames_flagged": sum(int((r.get("detector") or {}).get("frames_flagged") or 0) for r in records),
            "skipped": dict(skipped or {})}


def overall_exit(records: List[Dict[str, Any]]) -> int:
    if not records:
        return 2
    return max(r["verdict"]["exit_code"] for r in records)


def document(records: List[Dict[str, Any]], skipped: Optional[Dict[str, int]] = None,
             exit_code: Optional[int] = None) -> Dict[str, Any]:
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "exit_code": overall_exit(records) if exit_code is None else exit_code,
            "summary": summary(records, skipped), "files": [public(r) for r in records]}


def to_json(doc: Dict[str, Any], indent: Optional[int] = 2) -> str:
    return json.dumps(doc, indent=indent, sort_keys=False, default=str)

"""The `c2pa.soft-binding` assertion that ties a signed manifest to its watermark.

Shape per the C2PA specification's soft-binding-map (and c2pa-rs's SoftBinding type): `alg` (algorithm
name and version), `blocks` (each a `scope` and a `value` computed over it; for video the scope is a
timespan in milliseconds), optional `name` and `alg_params`, and the required `pad` bytes. Our algorithm
is not in the C2PA soft-binding algorithm list, so its name is reverse-domain namespaced.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from . import core, spread

LABEL = "c2pa.soft-binding"


def soft_binding(pid: int, duration_ms: Optional[int] = None) -> Dict[str, Any]:
    """Assertion (label + data) for a file watermarked with payload id `pid` over its whole duration."""
    scope: Dict[str, Any] = {}
    if duration_ms is not None:
        scope["timespan"] = {"start": 0, "end": int(duration_ms)}
    return {"label": LABEL, "data": {
        "alg": f"{core.ALG}.{core.ALG_VERSION}",
        "blocks": [{"scope": scope, "value": core.format_id(pid)}],
        "name": "veriswap invisible watermark: manifest id in every frame's luma",
        "alg_params": (f"grid={spread.GRID};id_bits={core.ID_BITS};crc=16;code=conv-k7-r1/2;"
                       f"id=sha256('veriswap-wm-id|'+manifest_label+'|'+signer_spki_der)[:4]"),
        "pad": [],
    }}


def payload_of(assertion_data: Dict[str, Any]) -> Optional[str]:
    """The payload id a soft-binding assertion of ours declares (None for other algorithms)."""
    if not isinstance(assertion_data, dict) or not str(assertion_data.get("alg", "")).startswith(core.ALG):
        return None
    for b in assertion_data.get("blocks") or []:
        if isinstance(b, dict) and isinstance(b.get("value"), str):
            return b["value"].lower()
    return None

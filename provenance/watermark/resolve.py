"""From a file with no metadata back to its signed manifest: decode the watermark, look the payload up in
a manifest store, and verify each recovered manifest against the file (c2pa's own validation).

The recovered manifest's signature and its `c2pa.soft-binding` assertion are what vouch for it; its hard
binding (the BMFF hash of the exact bytes that were signed) no longer matches a stripped or re-encoded
copy, and that is reported as expected rather than as tampering.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import c2pa

from .. import c2pa_verify as cv
from ..c2pa_sign import SIGNABLE
from ..c2pa_store import FileScan
from ..store import ManifestStore, Record
from .assertion import LABEL as SB_LABEL, payload_of
from .core import Detection
from .media import detect_file

HASH_CODES = ("assertion.bmffHash.mismatch", "assertion.dataHash.mismatch", "assertion.boxesHash.mismatch")


@dataclass
class Recovered:
    record: Dict[str, Any]
    state: str                          # intact-trusted | intact-untrusted | invalid
    binding_ok: bool                    # the manifest's soft-binding assertion names this payload
    content_changed: bool               # hard binding no longer matches (expected after stripping)
    report: Dict[str, Any] = field(default_factory=dict)   # c2pa_verify's report of the manifest
    problems: List[str] = field(default_factory=list)


@dataclass
class Resolution:
    path: str
    detection: Detection
    store: str
    recovered: List[Recovered] = field(default_factory=list)

    @property
    def best(self) -> Optional[Recovered]:
        ok = [r for r in self.recovered if r.binding_ok and r.state != "invalid"]
        return (ok or self.recovered or [None])[0]

    def exit_code(self, anchors: bool = False) -> int:
        b = self.best
        if not self.detection.found or b is None or not b.binding_ok or b.state == "invalid":
            return 1
        return 1 if anchors and b.state != "intact-trusted" else 0

    def to_dict(self) -> Dict[str, Any]:
        return {"path": self.path, "watermark": self.detection.to_dict(), "store": self.store,
                "recovered": [asdict(r) for r in self.recovered]}


def verify_recovered(path: Path, manifest: bytes, anchors: Iterable[Union[str, Path, bytes]] = ()) \
        -> Tuple[cv.VerifyReport, Dict[str, Any]]:
    """c2pa validation of a detached manifest store against `path`'s bytes; also its active manifest's
    assertions by label."""
    pem = [cv._load_anchor(a) for a in anchors]
    fmt = SIGNABLE.get(Path(path).suffix.lower()) or "video/mp4"
    ctx = cv._context(pem)
    try:
        with open(path, "rb") as f, c2pa.Reader(fmt, f, manifest_data=manifest, context=ctx) as reader:
            store, state, results, crjson = cv.read_manifest(reader)
    except c2pa.C2paError as e:
        msg = (str(e) or type(e).__name__).strip().splitlines()[0]
        return cv.VerifyReport(str(path), "invalid", failures=[
            cv.Finding("manifest.unreadable", f"the stored manifest cannot be read: {msg}")]), {}
    finally:
        ctx.close()
    # the same report `provenance verify` builds, fed the stored manifest bytes in place of the file's own
    rep, _ = cv._report(Path(path), store, state, results, crjson, FileScan(manifest, None))
    rep.trust_anchors = len(pem)
    active = (store.get("manifests") or {}).get(store.get("active_manifest")) or {}
    return rep, cv._assertions(active)


def resolve(path: Path, store: Optional[ManifestStore] = None, anchors: Iterable[Union[str, Path, bytes]] = (),
            max_frames: Optional[int] = None, progress=None) -> Resolution:
    path = Path(path)
    anchors = list(anchors)
    det = detect_file(path, max_frames=max_frames, progress=progress)
    store = store or ManifestStore()
    res = Resolution(str(path), det, str(store.root))
    if not det.found:
        return res
    for rec in store.lookup(det.payload_id):
        data = store.manifest(rec)
        rep, asserted = verify_recovered(path, data, anchors)
        binding_ok = payload_of(asserted.get(SB_LABEL)) == det.payload_id
        changed = any(f.code in HASH_CODES for f in rep.failures)
        other = [f for f in rep.failures if f.code not in HASH_CODES and not cv._tolerated(f.code)]
        if other:
            state = "invalid"
        elif rep.trust == "trusted":
            state = "intact-trusted"
        else:
            state = "intact-untrusted"
        problems = [f"{f.code}: {f.words}" for f in other]
        if not binding_ok:
            problems.append("the manifest's soft-binding assertion does not name this watermark")
        d = rep.to_dict()
        res.recovered.append(Recovered(record=_rec(rec), state=state, binding_ok=binding_ok,
                                       content_changed=changed, report=d, problems=problems))
    return res


def _rec(rec: Record) -> Dict[str, Any]:
    d = asdict(rec)
    d.pop("soft_binding", None)
    return d

"""Local manifest store: every manifest veriswap signs, kept so a stripped copy can find it again.

A watermark (provenance.watermark) carries a 32-bit id; the store maps that id back to the signed
manifest. Layout (plain files, so a store can be shared as a folder, zipped, or synced):

    $VERISWAP_HOME/manifests/            (default store; any folder works as one)
        <id>/<manifest uuid>.c2pa        the manifest store bytes (JUMBF) exactly as signed
        <id>/<manifest uuid>.json        a small record: label, signer, time, model, source, title...

Several manifests may share an id (32 bits; a collision is rare but possible): lookups return all of
them and the caller verifies each. Writes are atomic; a record that cannot be read is a StoreError
(exit 2), never a traceback.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from .errors import ProvenanceError
from .fsutil import atomic_write_bytes
from .keys import veriswap_home

RECORD_VERSION = 1


class StoreError(ProvenanceError):
    """A manifest store folder or record that cannot be used (exit 2)."""


def default_store_dir() -> Path:
    return veriswap_home() / "manifests"


@dataclass
class Record:
    payload_id: str                       # 8 hex digits (the watermark payload)
    manifest_label: str                   # urn:c2pa:<uuid>
    signer: Optional[str] = None          # certificate subject
    signed_at: Optional[str] = None
    title: Optional[str] = None           # the signed file's name
    source: Optional[str] = None          # the source video's name
    model: Optional[str] = None           # model hash (and architecture) for swaps
    soft_binding: Dict[str, Any] = field(default_factory=dict)
    manifest_sha256: Optional[str] = None
    version: int = RECORD_VERSION
    path: Optional[str] = None            # where the .c2pa lies (set on load, not stored)

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("path")
        return json.dumps(d, indent=1, sort_keys=True)


def manifest_of(signed: Path) -> bytes:
    """The C2PA manifest store (JUMBF) embedded in a signed MP4/MOV, JPEG or PNG."""
    from .c2pa_store import scan_file

    try:
        data = scan_file(signed).store
    except OSError as e:
        raise StoreError(f"cannot read {Path(signed).name}: {e.strerror or e}") from None
    if not data:
        raise StoreError(f"{Path(signed).name} carries no embedded C2PA manifest to keep")
    return data


class ManifestStore:
    """A folder of signed manifests indexed by watermark payload id."""

    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root) if root is not None else default_store_dir()
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"manifest store {self.root} is not a folder")

    # -- writing -----------------------------------------------------------------------------------
    def add(self, record: Record, manifest: bytes) -> Record:
        pid = _check_id(record.payload_id)
        name = _label_name(record.manifest_label)
        if not manifest.startswith(b"\0") or b"jumb" not in manifest[:16]:
            raise StoreError("refusing to store data that is not a C2PA manifest store (JUMBF)")
        record.manifest_sha256 = hashlib.sha256(manifest).hexdigest()
        d = self.root / pid
        atomic_write_bytes(d / f"{name}.c2pa", manifest)
        atomic_write_bytes(d / f"{name}.json", record.to_json().encode())
        record.path = str(d / f"{name}.c2pa")
        return record

    def add_signed_file(self, signed: Path, record: Record) -> Record:
        """Keep the manifest embedded in a freshly signed file."""
        return self.add(record, manifest_of(signed))

    # -- reading -----------------------------------------------------------------------------------
    def lookup(self, payload_id: str) -> List[Record]:
        d = self.root / _check_id(payload_id)
        if not d.is_dir():
            return []
        return [self._load(p) for p in sorted(d.glob("*.json"))]

    def manifest(self, record: Record) -> bytes:
        p = Path(record.path or "")
        try:
            data = p.read_bytes()
        except OSError:
            raise StoreError(f"corrupt manifest store {self.root}: {p.name} is missing") from None
        if record.manifest_sha256 and hashlib.sha256(data).hexdigest() != record.manifest_sha256:
            raise StoreError(f"corrupt manifest store {self.root}: {p.name} does not match its record")
        return data

    def records(self) -> Iterator[Record]:
        if not self.root.is_dir():
            return
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and _is_id(d.name):
                for p in sorted(d.glob("*.json")):
                    yield self._load(p)

    def _load(self, p: Path) -> Record:
        try:
            d = json.loads(p.read_text())
            if not isinstance(d, dict) or d.get("version") != RECORD_VERSION:
                raise ValueError("unknown record version")
            d = {k: v for k, v in d.items() if k in Record.__dataclass_fields__ and k != "path"}
            rec = Record(**d)
            _check_id(rec.payload_id)
            _label_name(rec.manifest_label)
        except (OSError, ValueError, TypeError, StoreError) as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise StoreError(f"corrupt manifest store {self.root}: {p.parent.name}/{p.name}: {why}") from None
        rec.path = str(p.with_suffix(".c2pa"))
        return rec

    # -- sharing -----------------------------------------------------------------------------------
    def export(self, dest: Path) -> int:
        """Copy every record (checked) into folder `dest`; returns how many."""
        dest = Path(dest)
        n = 0
        for rec in self.records():
            data = self.manifest(rec)
            ManifestStore(dest).add(_copy(rec), data)
            n += 1
        return n

    def import_from(self, src: Path) -> int:
        """Add every record of the store folder `src` (all checked before any is added)."""
        src = Path(src)
        if not src.is_dir():
            raise StoreError(f"no manifest store folder: {src}")
        other = ManifestStore(src)
        items = [(rec, other.manifest(rec)) for rec in other.records()]
        for rec, data in items:
            self.add(_copy(rec), data)
        return len(items)


def _copy(rec: Record) -> Record:
    d = asdict(rec)
    d.pop("path")
    return Record(**d)


def _is_id(s: str) -> bool:
    return len(s) == 8 and all(c in "0123456789abcdef" for c in s)


def _check_id(pid: str) -> str:
    pid = str(pid).lower()
    if not _is_id(pid):
        raise StoreError(f"not a watermark payload id (8 hex digits): {pid!r}")
    return pid


def _label_name(label: str) -> str:
    """File name for a manifest label 'urn:c2pa:<uuid>' (only the uuid: no path tricks)."""
    tail = str(label).rsplit(":", 1)[-1]
    if not label.startswith("urn:c2pa:") or not tail or not all(c in "0123456789abcdefABCDEF-" for c in tail):
        raise StoreError(f"not a C2PA manifest label: {label!r}")
    return tail.lower()

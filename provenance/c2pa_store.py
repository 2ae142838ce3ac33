"""What c2pa-python's Reader does not hand over: the manifest store's raw bytes, the signing certificate
chain inside the claim signature, and the bytes of a file that no signature covers.

- `manifest_store(data)` finds the C2PA manifest store (a JUMBF superbox) in JPEG (APP11 segments, joined),
  PNG (`caBX`), ISO BMFF (the C2PA `uuid` box) and, for other containers that keep it in one piece
  (TIFF/DNG, WebP, HEIF...), by its JUMBF description box.
- `claim_signature(store, label)` parses the COSE_Sign1 claim signature of one manifest: the X.509 chain
  (`x5chain`, signing certificate first) and the unprotected `pad` bytes, which no signature covers.
- `bmff_unsigned(data)` lists what a C2PA BMFF hard binding leaves out by design: `ftyp`, `free`/`skip`,
  `mfra` and the manifest box itself.

Everything here is read-only, bounded and defensive: hostile files give `None` or empty results, never
exceptions (c2pa-rs has already validated what matters; this only adds evidence for the report).
"""
from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from cryptography import x509

from .c2pa_cbor import MAX_CBOR_DEPTH, CborError, Tagged, cbor_decode  # noqa: F401  (re-exported)
from .c2pa_scan import PNG_SIGNATURE, STEP, bmff_skeleton, jpeg_head, png_store_chunk  # noqa: F401

C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")      # BMFF uuid box of a manifest store
JUMD_C2PA = bytes.fromhex("6332706100110010800000aa00389b71")       # JUMBF type of the store ('c2pa')
_STORE_HEAD = re.compile(rb"jumb.{4}jumd" + re.escape(JUMD_C2PA) + rb".c2pa\x00", re.S)


# ---------------------------------------------------------------- container formats

def _jpeg_store(data: bytes) -> Optional[bytes]:
    """Join the APP11 (JPEG XT box) segments that carry the c2pa JUMBF superbox."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i, parts = 2, {}
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no metadata after this
            break
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 1 if marker == 0xFF else 2
            continue
        seglen = struct.unpack(">H", data[i + 2:i + 4])[0]
        seg = data[i + 4:i + 2 + seglen]
        if marker == 0xEB and len(seg) >= 16 and seg[:2] == b"JP":
            en, z = struct.unpack(">HI", seg[2:8])
            body = seg[8:]
            parts.setdefault(en, []).append((z, body))
        i += 2 + seglen
    for en, segs in parts.items():
        segs.sort()
        first = segs[0][1]
        if first[4:8] != b"jumb":
            continue
        hdr = 16 if struct.unpack(">I", first[:4])[0] == 1 else 8
        joined = first + b"".join(body[hdr:] for _, body in segs[1:])
        if _STORE_HEAD.match(joined, 4):
            return joined
    return None


def _png_store(data: bytes) -> Optional[bytes]:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    i = 8
    while i + 12 <= len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind == b"caBX":
            return data[i + 8:i + 8 + n]
        i += 12 + n
    return None


def bmff_boxes(data: bytes) -> Iterator[Tuple[int, int, int, bytes]]:
    """Top-level ISO BMFF boxes: (offset, size, header size, type). Stops at the first malformed box."""
    i = 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        hdr = 8
        if size == 1:
            if i + 16 > len(data):
                return
            size, hdr = struct.unpack(">Q", data[i + 8:i + 16])[0], 16
        elif size == 0:
            size = len(data) - i
        if size < hdr:
            return
        yield i, size, hdr, kind
        i += size


def _bmff_c2pa_box(data: bytes) -> Optional[Tuple[int, int, int]]:
    """(box offset, box size, offset of the store) of the C2PA `manifest` uuid box."""
    for off, size, hdr, kind in bmff_boxes(data):
        if kind == b"uuid" and data[off + hdr:off + hdr + 16] == C2PA_UUID:
            p = off + hdr + 16 + 4                      # uuid, then version + flags
            end = data.find(b"\x00", p, off + size)
            if end < 0:
                return None
            purpose = data[p:end]
            if purpose != b"manifest":
                continue
            return off, size, end + 1 + 8               # purpose string, then the 8-byte merkle offset
    return None


def manifest_store(data: bytes) -> Optional[bytes]:
    """The raw C2PA manifest store (JUMBF superbox) embedded in `data`, or None."""
    store = _jpeg_store(data) or _png_store(data)
    if store is None and data[4:8] == b"ftyp":
        box = _bmff_c2pa_box(data)
        if box is not None:
            off, size, start = box
            store = data[start:off + size]
    if store is None:
        m = _STORE_HEAD.search(data)
        if m is None or m.start() < 4:
            return None
        store = data[m.start() - 4:]
    if len(store) < 8:
        return None
    n = struct.unpack(">I", store[:4])[0]
    # a declared length that does not fit is not trusted; c2pa-rs reads on to the end of the container
    # box, and so does this (what matters for the report is the signature box inside)
    return store[:n] if 8 <= n < len(store) else store


# ---------------------------------------------------------------- JUMBF

@dataclass
class Jumbf:
    label: Optional[str]
    children: List["Jumbf"] = field(default_factory=list)
    content: List[Tuple[bytes, bytes]] = field(default_factory=list)   # (box type, payload) of data boxes

    def child(self, label: str) -> Optional["Jumbf"]:
        return next((c for c in self.children if c.label == label), None)


def _boxes(buf: bytes) -> Iterator[Tuple[bytes, bytes]]:
    i = 0
    while i + 8 <= len(buf):
        size, kind = struct.unpack(">I4s", buf[i:i + 8])
        hdr = 8
        if size == 1 and i + 16 <= len(buf):
            size, hdr = struct.unpack(">Q", buf[i + 8:i + 16])[0], 16
        elif size == 0:
            size = len(buf) - i
        if size < hdr or i + size > len(buf):
            return
        yield kind, buf[i + hdr:i + size]
        i += size


def parse_jumbf(payload: bytes, depth: int = 0, max_depth: int = 8) -> Jumbf:
    """A `jumb` superbox's payload (description box first) as a tree; below `max_depth`, superboxes stay
    unparsed in `content` (as (b"jumb", payload))."""
    node = Jumbf(None)
    for n, (kind, body) in enumerate(_boxes(payload)):
        if n == 0 and kind == b"jumd":
            toggles = body[16] if len(body) > 16 else 0
            if toggles & 0x02:
                rest = bytes(body[17:])             # (body may be a memoryview)
                end = rest.find(b"\x00")
                node.label = rest[:end if end >= 0 else len(rest)].decode("utf-8", "replace")
        elif kind == b"jumb" and depth < min(max_depth, 8):
            node.children.append(parse_jumbf(body, depth + 1, max_depth))
        else:
            node.content.append((kind, body))
    return node


def parse_store(store: bytes, max_depth: int = 8) -> Optional[Jumbf]:
    if len(store) < 8 or store[4:8] != b"jumb":
        return None
    n = struct.unpack(">I", store[:4])[0]
    hdr = 16 if n == 1 else 8
    if n == 1 and len(store) >= 16:
        n = struct.unpack(">Q", store[8:16])[0]
    root = parse_jumbf(store[hdr:n] if hdr <= n <= len(store) else store[hdr:], 0, max_depth)
    return root if root.label == "c2pa" else None


# ---------------------------------------------------------------- the claim signature

@dataclass
class ClaimSignature:
    chain: List[x509.Certificate]          # signing certificate first
    pad_bytes: int                         # length of the unprotected pad (not covered by any signature)
    pad_nonzero: int                       # how many of those bytes are not zero


def signature_box(store: bytes, label: Optional[str]) -> Optional[bytes]:
    """The COSE_Sign1 (cbor box) of manifest `label`'s claim signature (the last manifest when `label` is
    None): what parse_store(store) gives, without parsing (or copying) the rest of the store."""
    root = parse_store(memoryview(store), max_depth=1)      # the manifests, their boxes left unparsed
    if root is None or not root.children:
        return None
    m = next((c for c in root.children if c.label == label), None) if label else root.children[-1]
    # m's first superbox labelled c2pa.signature (m.child on a full parse), parsed alone
    sig = next((s for s in (parse_jumbf(body, 2, 2) for kind, body in m.content if kind == b"jumb")
                if s.label == "c2pa.signature"), None) if m is not None else None
    cose = next((body for kind, body in sig.content if kind == b"cbor"), None) if sig is not None else None
    return None if cose is None else bytes(cose)


def claim_signature(store: bytes, label: Optional[str]) -> Optional[ClaimSignature]:
    """The certificate chain and unsigned pad of manifest `label`'s claim signature (the last manifest
    when `label` is None)."""
    try:
        cose = signature_box(store, label)
        if cose is None:
            return None
        msg = cbor_decode(cose)
        if isinstance(msg, Tagged):
            msg = msg.value
        if not (isinstance(msg, list) and len(msg) == 4):
            return None
        protected = cbor_decode(msg[0]) if isinstance(msg[0], bytes) and msg[0] else {}
        unprotected = msg[1] if isinstance(msg[1], dict) else {}
        raw = None
        for hdr in (protected, unprotected):
            if isinstance(hdr, dict):
                raw = hdr.get(33, hdr.get("x5chain"))
                if raw is not None:
                    break
        ders = [raw] if isinstance(raw, bytes) else [c for c in (raw or []) if isinstance(c, bytes)]
        chain = [x509.load_der_x509_certificate(d) for d in ders]
        for c in chain:  # cryptography parses lazily: make a malformed certificate fail here, not later
            c.subject.rfc4514_string(), c.issuer.rfc4514_string(), c.serial_number
            c.not_valid_before_utc, c.not_valid_after_utc
        pads = [v for k, v in unprotected.items() if k in ("pad", "pad2") and isinstance(v, bytes)]
        return ClaimSignature(chain, sum(map(len, pads)), sum(len(p) - p.count(0) for p in pads))
    except (CborError, ValueError, IndexError, struct.error, TypeError):
        return None


def cert_fingerprint(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


# ---------------------------------------------------------------- what a BMFF hard binding leaves out

@dataclass
class BmffUnsigned:
    ftyp: Optional[bytes]                  # the whole ftyp box (excluded from the hash)
    free_bytes: int                        # payload bytes of top-level free/skip boxes (excluded)
    free_nonzero: int                      # of which not zero
    mfra_bytes: int                        # top-level mfra (excluded)
    manifest_box_slack: int                # bytes of the C2PA uuid box after the manifest store


def bmff_unsigned(data: bytes) -> Optional[BmffUnsigned]:
    if data[4:8] != b"ftyp":
        return None
    ftyp, free, free_nz, mfra = None, 0, 0, 0
    for off, size, hdr, kind in bmff_boxes(data):
        body = data[off + hdr:off + size]
        if kind == b"ftyp" and ftyp is None:
            ftyp = data[off:off + size]
        elif kind in (b"free", b"skip"):
            free += len(body)
            free_nz += len(body) - body.count(0)
        elif kind == b"mfra":
            mfra += size
    slack = 0
    box = _bmff_c2pa_box(data)
    if box is not None:
        off, size, start = box
        store = data[start:off + size]
        n = struct.unpack(">I", store[:4])[0] if len(store) >= 4 else 0
        if 8 <= n <= len(store):
            slack = len(store) - n
    return BmffUnsigned(ftyp, free, free_nz, mfra, slack)


def ftyp_box(data: bytes) -> Optional[bytes]:
    if data[4:8] != b"ftyp":
        return None
    size = struct.unpack(">I", data[:4])[0]
    return data[:size] if 8 <= size <= min(len(data), 4096) else None


# ---------------------------------------------------------------- files of any size

WHOLE_FILE_LIMIT = 256 << 20      # read smaller files at once; larger ones by their structure
SMALL_BOX = 64 << 20              # top-level BMFF boxes of a large file read into memory (others streamed)


@dataclass
class FileScan:
    store: Optional[bytes]                 # the raw manifest store, if found
    bmff: Optional[BmffUnsigned]           # for ISO BMFF files: what the hard binding leaves out


def _bmff_skeleton(f, size: int) -> bytes:
    return bmff_skeleton(f, size, SMALL_BOX)


def _scan(data: bytes) -> FileScan:
    try:
        store = manifest_store(data)
    except (struct.error, IndexError, ValueError):
        store = None
    try:
        bmff = bmff_unsigned(data)
    except (struct.error, IndexError, ValueError):
        bmff = None
    return FileScan(store, bmff)


def scan_file(path) -> FileScan:
    """Find the manifest store and, for BMFF, the unsigned regions of a file of any size. Only the parts
    that hold them are read (c2pa_scan: JPEG metadata segments, PNG's caBX chunk, BMFF's top-level boxes
    but mdat); where the store is not found there, a file up to WHOLE_FILE_LIMIT is read whole."""
    import os

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(16)
        bmff = head[4:8] == b"ftyp"
        if bmff:
            part = bmff_skeleton(f, size, WHOLE_FILE_LIMIT if size <= WHOLE_FILE_LIMIT else SMALL_BOX)
        elif head.startswith(b"\xff\xd8"):
            part = jpeg_head(f, size)
        elif head.startswith(PNG_SIGNATURE):
            part = png_store_chunk(f, size)
        else:
            part = None
        scan = _scan(part) if part is not None else None
        if scan is not None and (scan.store is not None or (bmff and size > WHOLE_FILE_LIMIT)):
            return scan
        if size <= WHOLE_FILE_LIMIT:
            f.seek(0)
            data = f.read()
        else:
            f.seek(0)
            data = f.read(64 << 20)   # JPEG/PNG/TIFF keep metadata near the start
    return _scan(data)

"""The veriswap footage tag file (JSON Lines, version 1): writing, strict parsing, authentication.

    line 1     header  {"format": "veriswap-tags", "version": 1, "mode": "hmac-sha256"|"ed25519", ...}
    per frame  entry   {"i": n, "pts": p|null, "k": 0|1, "h": sha256(packet), "c": chain}  (+ "t": HMAC)
    ed25519    group   {"g": g, "n": frames so far, "s": signature}  after every `group` frames
    last line  end     {"end": true, "frames": n, "c": last chain, "t"|"s": MAC or signature}

H = SHA-256("veriswap-tags/1 header" || header line bytes); c_-1 = H;
c_i = SHA-256(c_(i-1) || i (u64) || pts (i64) || keyframe (u8) || h_i)  -- the per-frame hash chain.
HMAC mode: t_i = HMAC-SHA256(key, "veriswap-tags/1 frame" || H || c_i) per frame.
Ed25519 mode: s_g = Sign("veriswap-tags/1 group" || H || g (u64) || c_last of group) per group.
End: MAC/Sign("veriswap-tags/1 end" || H || n (u64) || c_(n-1)), so a cut or padded tag file fails.
An entry is authentic when its chain link holds and its tag (or its group's signature) verifies; a
broken entry is thus located to itself (HMAC) or to its group (Ed25519).

Long module: the writer and the strict parser of one hostile-input format stay side by side, so every
field's spelling and check can be read against each other (`read_entries`, long too, is that one parser).
Long function: `read_entries` is that one streaming parser (a generator): its checks share the running state.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
from binascii import unhexlify
from dataclasses import dataclass, field
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import TagFormatError
from .frames import NO_PTS, FrameHash

FORMAT, VERSION = "veriswap-tags", 1
MODES = ("hmac-sha256", "ed25519")
DOM = b"veriswap-tags/1 "
_FRAME = DOM + b"frame"
MAX_LINE = 4096            # no legitimate line is longer: bounds memory on hostile input
DEFAULT_GROUP = 32         # frames per Ed25519 signature (about one GOP at 25-30 fps)
MAX_GROUP = 100_000

Key = Union[bytes, ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey]


def key_id(key: Key) -> str:
    """A short public fingerprint to tell keys apart (never the secret itself)."""
    if isinstance(key, bytes):
        return hashlib.sha256(DOM + b"key-id" + key).hexdigest()[:16]
    pub = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return hashlib.sha256(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def header_digest(line: bytes) -> bytes:
    return hashlib.sha256(DOM + b"header" + line).digest()


_ENTRY = struct.Struct(">QqB")  # i, pts, keyframe: the fixed part of a chain link


def entry_bytes(i: int, pts: Optional[int], keyframe: bool, digest: bytes) -> bytes:
    return _ENTRY.pack(i, NO_PTS if pts is None else pts, 1 if keyframe else 0) + digest


def chain_next(prev: bytes, i: int, pts: Optional[int], keyframe: bool, digest: bytes) -> bytes:
    return hashlib.sha256(prev + entry_bytes(i, pts, keyframe, digest)).digest()


def _mac(key: bytes, *parts: bytes) -> bytes:
    return hmac.digest(key, b"".join(parts), "sha256")


_BLOCK = 64  # SHA-256 block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class FrameMac:
    """HMAC-SHA256(key, prefix || msg) for many short messages with one key and prefix.

    The RFC 2104 construction the hmac module implements, with the two keyed SHA-256 states (and the
    prefix) absorbed once: each message then costs two hashlib state copies (~0.7 us) instead of the
    hmac module's Python-level copy()/update()/digest() (~1.5 us), once per frame in tag and check.
    The output is byte for byte hmac.new(key, prefix + msg, "sha256").digest() (tests compare them)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, prefix: bytes = b""):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD) + prefix)
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, msg: bytes) -> bytes:
        i = self._inner.copy()
        i.update(msg)
        o = self._outer.copy()
        o.update(i.digest())
        return o.digest()


def _dumps(obj: Dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode() + b"\n"


class TagWriter:
    """Write a tag file entry by entry (the caller provides an open binary file)."""

    def __init__(self, f: IO[bytes], mode: str, key: Key, header: Dict[str, Any], group: int = DEFAULT_GROUP):
        if mode not in MODES:
            raise TagFormatError(f"unknown tag mode {mode!r}; choose from {', '.join(MODES)}")
        if mode == "hmac-sha256" and not isinstance(key, bytes):
            raise TagFormatError("hmac mode needs a secret key file (e.g. tag.key from keygen)")
        if mode == "ed25519" and not isinstance(key, ed25519.Ed25519PrivateKey):
            raise TagFormatError("ed25519 mode needs an Ed25519 private key (PEM) to tag")
        self.f, self.mode, self.key, self.group = f, mode, key, group
        head = {"format": FORMAT, "version": VERSION, "mode": mode, "hash": "sha256",
                "key_id": key_id(key), **header}
        if mode == "ed25519":
            head["group"] = group
        line = _dumps(head)
        f.write(line)
        self.H = header_digest(line)
        self.chain = self.H
        self._frame_mac = FrameMac(key, _FRAME + self.H) if mode == "hmac-sha256" else None
        self.n = 0
        self.groups = 0

    def _sign(self, *parts: bytes) -> str:
        msg = b"".join(parts)
        if self.mode == "hmac-sha256":
            return _mac(self.key, msg).hex()
        return self.key.sign(msg).hex()

    def add(self, fr: FrameHash) -> None:
        self.add_all((fr,))

    def add_all(self, frames: Iterable[FrameHash]) -> None:
        """Append an entry line per frame (the hot loop of `tag`: everything per frame is inlined)."""
        write, pack, sha256 = self.f.write, _ENTRY.pack, hashlib.sha256
        mac = self._frame_mac.digest if self._frame_mac is not None else None
        group = self.group if self.mode == "ed25519" else 0
        c, n = self.chain, self.n
        try:
            for fr in frames:
                pts, d = fr.pts, fr.digest
                k = 1 if fr.keyframe else 0
                if pts is None:
                    c = sha256(c + pack(n, NO_PTS, k) + d).digest()
                    pts_s: Any = "null"
                else:
                    c = sha256(c + pack(n, pts, k) + d).digest()
                    pts_s = int(pts)
                # the same compact, key-sorted JSON that _dumps writes, formatted by hand
                if mac is not None:
                    write(f'{{"c":"{c.hex()}","h":"{d.hex()}","i":{n},"k":{k},"pts":{pts_s},'
                          f'"t":"{mac(c).hex()}"}}\n'.encode())
                    n += 1
                else:
                    write(f'{{"c":"{c.hex()}","h":"{d.hex()}","i":{n},"k":{k},"pts":{pts_s}}}\n'.encode())
                    n += 1
                    if n % group == 0:
                        self.chain, self.n = c, n
                        self._close_group()
        finally:
            self.chain, self.n = c, n

    def _close_group(self) -> None:
        s = self._sign(DOM, b"group", self.H, struct.pack(">Q", self.groups), self.chain)
        self.f.write(_dumps({"g": self.groups, "n": self.n, "s": s}))
        self.groups += 1

    def finish(self) -> None:
        if self.mode == "ed25519" and self.n % self.group:
            self._close_group()
        sig = self._sign(DOM, b"end", self.H, struct.pack(">Q", self.n), self.chain)
        self.f.write(_dumps({"end": True, "frames": self.n, "c": self.chain.hex(),
                             ("t" if self.mode == "hmac-sha256" else "s"): sig}))


@dataclass(slots=True)
class TagEntry:
    index: int
    pts: Optional[int]
    keyframe: bool
    digest: Optional[bytes]     # None when the entry failed authentication: it vouches for nothing
    authentic: bool


@dataclass
class TagSummary:
    """Filled in while entries are read; complete once the iterator is exhausted."""
    header: Dict[str, Any]
    frames_declared: Optional[int] = None
    end_ok: bool = False
    bad_entries: int = 0
    first_bad_entry: Optional[int] = None
    problems: List[str] = field(default_factory=list)


# ---- strict parsing: every deviation is a TagFormatError naming the line ----

_HEX = re.compile(r"[0-9a-f]*")


def _hex(v: Any, n: int, what: str, ln: int) -> bytes:
    # lowercase only: one canonical spelling per value, so an accepted file says exactly what was signed
    if type(v) is not str or len(v) != 2 * n or not _HEX.fullmatch(v):
        raise TagFormatError(f"tag file line {ln}: {what} must be {2 * n} lowercase hex digits")
    return bytes.fromhex(v)


def _int(v: Any, what: str, ln: int, lo: int = 0, hi: int = 2 ** 63 - 1) -> int:
    if type(v) is not int or not lo <= v <= hi:  # type(): rejects bool and int subclasses
        raise TagFormatError(f"tag file line {ln}: {what} must be an integer in [{lo}, {hi}]")
    return v


# exactly the compact, key-sorted frame line TagWriter writes (valid JSON: no leading zeros); anything
# else goes through json.loads and the field checks, with the same meaning and the same errors
_FAST_ENTRY = re.compile(
    rb'\{"c":"([0-9a-f]{64})","h":"([0-9a-f]{64})","i":(0|[1-9][0-9]{0,18}),"k":([01]),'
    rb'"pts":(null|-?(?:0|[1-9][0-9]{0,18}))(?:,"t":"([0-9a-f]{64})")?\}\n')
_MAX_I64 = 2 ** 63 - 1


def _parse(raw: bytes, ln: int) -> Any:
    """One line read with readline(MAX_LINE + 1): the regex match of a canonical frame line, or the
    JSON object of any other line; TagFormatError for anything malformed."""
    m = _FAST_ENTRY.match(raw)
    if m is not None:  # the canonical frame line `tag` writes: no JSON parser needed
        return m
    if len(raw) > MAX_LINE:
        raise TagFormatError(f"tag file line {ln}: longer than {MAX_LINE} bytes")
    if not raw.endswith(b"\n"):
        raise TagFormatError(f"tag file line {ln}: cut off (no line end)")
    try:
        obj = json.loads(raw.decode("utf-8"))  # str input skips json's encoding detection
    except (ValueError, RecursionError):
        raise TagFormatError(f"tag file line {ln}: not JSON") from None
    if not isinstance(obj, dict):
        raise TagFormatError(f"tag file line {ln}: expected a JSON object")
    return obj


def _lines(f: IO[bytes], ln: int = 0) -> Iterator[Tuple[int, bytes, Any]]:
    while True:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        ln += 1
        yield ln, raw, _parse(raw, ln)


def read_header(f: IO[bytes]) -> Tuple[Dict[str, Any], bytes, Iterator[Tuple[int, bytes, Dict[str, Any]]]]:
    lines = _lines(f)
    first = next(lines, None)
    if first is None:
        raise TagFormatError("tag file is empty")
    ln, raw, head = first
    if type(head) is not dict or head.get("format") != FORMAT:
        raise TagFormatError("not a veriswap tag file (no 'format': 'veriswap-tags' header)")
    if head.get("version") != VERSION:
        raise TagFormatError(f"unsupported tag file version {head.get('version')!r} (this reads {VERSION})")
    if head.get("mode") not in MODES:
        raise TagFormatError(f"tag file header: unknown mode {head.get('mode')!r}")
    if head.get("hash") != "sha256":
        raise TagFormatError(f"tag file header: unknown hash {head.get('hash')!r}")
    if not isinstance(head.get("key_id"), str):
        raise TagFormatError("tag file header: missing key_id")
    if head["mode"] == "ed25519":
        _int(head.get("group"), "group", 1, 1, MAX_GROUP)
    if not isinstance(head.get("stream", {}), dict):
        raise TagFormatError("tag file header: 'stream' must be an object")
    return head, raw, lines


def read_entries(f: IO[bytes], key: Key, summary_out: List[TagSummary]) -> Iterator[TagEntry]:
    """Parse and authenticate a tag file, yielding entries in order (streaming; bounded memory).
    `summary_out` receives the TagSummary first thing, so callers see the header before the entries."""
    head, raw, lines = read_header(f)
    summary = TagSummary(head)
    summary_out.append(summary)
    H = header_digest(raw)
    mode = head["mode"]
    if mode == "hmac-sha256" and not isinstance(key, bytes):
        raise TagFormatError("these tags are HMAC-SHA256: give the shared secret key file (tag.key)")
    if mode == "ed25519":
        if isinstance(key, bytes):
            raise TagFormatError("these tags are Ed25519-signed: give the public key or certificate (PEM)")
        key = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key

    def verify(sig_hex: Any, ln: int, *parts: bytes) -> bool:
        if mode == "hmac-sha256":
            return hmac.compare_digest(_mac(key, *parts), _hex(sig_hex, 32, "t", ln))
        try:
            key.verify(_hex(sig_hex, 64, "s", ln), b"".join(parts))
            return True
        except InvalidSignature:
            return False

    def bad(entry: TagEntry) -> TagEntry:
        summary.bad_entries += 1
        if summary.first_bad_entry is None:
            summary.first_bad_entry = entry.index
        entry.digest, entry.authentic = None, False
        return entry

    lines.close()  # the header was line 1; the rest is read here, line by line
    frame_mac = FrameMac(key, _FRAME + H).digest if mode == "hmac-sha256" else None
    max_group = head.get("group")
    readline, match, sha256, pack = f.readline, _FAST_ENTRY.match, hashlib.sha256, _ENTRY.pack
    unhex, same = unhexlify, hmac.compare_digest
    prev = H                      # stored chain value of the previous entry
    n = 0                         # entries read
    group: List[Tuple[TagEntry, bool]] = []  # ed25519: entries waiting for their group signature
    groups = 0
    ln = 1
    while True:
        raw = readline(MAX_LINE + 1)
        if not raw:
            break
        ln += 1
        m = match(raw)
        if m is not None:  # the canonical frame line `tag` writes: the hot path, all inline
            c_hex, h_hex, i_s, k_s, pts_s, t_hex = m.groups()
            i = int(i_s)
            if pts_s == b"null":
                pts, p = None, NO_PTS
            else:
                pts = p = int(pts_s)
            if i > _MAX_I64 or (pts is not None and not -_MAX_I64 <= pts <= _MAX_I64):
                raise TagFormatError(f"tag file line {ln}: i or pts out of range")
            k, h, c = k_s == b"1", unhex(h_hex), unhex(c_hex)
            # the position, not the claimed "i", is what counts: a moved line fails its link
            link_ok = same(sha256(prev + pack(n, p, k) + h).digest(), c) and i == n
            entry = TagEntry(n, pts, k, h, True)
            prev = c
            n += 1
            if frame_mac is not None:
                if t_hex is None:
                    _hex(None, 32, "t", ln)  # raises: a frame line of an HMAC tag file needs its tag
                if link_ok and same(frame_mac(c), unhex(t_hex)):
                    yield entry
                else:
                    yield bad(entry)
            else:
                group.append((entry, link_ok))
                if len(group) > max_group:
                    raise TagFormatError(f"tag file line {ln}: more than {max_group} frames without a group signature")
            continue
        obj = _parse(raw, ln)
        if "end" in obj:
            if obj.get("end") is not True:
                raise TagFormatError(f"tag file line {ln}: 'end' must be true")
            frames = _int(obj.get("frames"), "frames", ln)
            c = _hex(obj.get("c"), 32, "c", ln)
            summary.frames_declared = frames
            sig = obj.get("t" if mode == "hmac-sha256" else "s")
            summary.end_ok = (not group and frames == n and hmac.compare_digest(c, prev)
                              and verify(sig, ln, DOM, b"end", H, struct.pack(">Q", frames), c))
            if not summary.end_ok:
                summary.problems.append(f"the end line (line {ln}) does not verify: tag file cut, padded or forged")
            for e, _ in group:    # entries never covered by a group signature
                yield bad(e)
            if readline(1):
                raise TagFormatError(f"tag file line {ln + 1}: data after the end line")
            return
        elif "g" in obj:
            if mode != "ed25519":
                raise TagFormatError(f"tag file line {ln}: group signature in an HMAC tag file")
            g = _int(obj.get("g"), "g", ln)
            count = _int(obj.get("n"), "n", ln)
            ok = g == groups and count == n and bool(group) and verify(
                obj.get("s"), ln, DOM, b"group", H, struct.pack(">Q", g), prev)
            # the signature covers the last chain value; walking back, each intact link extends it
            if not ok:
                summary.problems.append(f"group signature {g} (line {ln}) does not verify")
            covered = ok
            flags = []
            for e, link_ok in reversed(group):
                covered = covered and link_ok
                flags.append(covered)
            for (e, _), cov in zip(group, reversed(flags)):
                yield e if cov else bad(e)
            group = []
            groups += 1
            continue
        else:
            i = _int(obj.get("i"), "i", ln)
            pts = obj.get("pts")
            if pts is not None:
                pts = _int(pts, "pts", ln, -_MAX_I64, _MAX_I64)
            k = bool(_int(obj.get("k"), "k", ln, 0, 1))
            h = _hex(obj.get("h"), 32, "h", ln)
            c = _hex(obj.get("c"), 32, "c", ln)
            t = obj.get("t")
        # the position, not the claimed "i", is what counts: a moved line fails its link
        link_ok = hmac.compare_digest(chain_next(prev, n, pts, k, h), c) and i == n
        entry = TagEntry(n, pts, k, h, True)
        prev = c
        n += 1
        if frame_mac is not None:
            t = _hex(t, 32, "t", ln)
            ok = link_ok and hmac.compare_digest(frame_mac(c), t)
            yield entry if ok else bad(entry)
        else:
            group.append((entry, link_ok))
            if len(group) > max_group:
                raise TagFormatError(f"tag file line {ln}: more than {max_group} frames without a group signature")
    # no end line: the tag file was cut; whatever is not covered by a signature is not authentic
    summary.problems.append("the tag file has no end line (cut off)")
    for e, _ in group:
        yield bad(e)

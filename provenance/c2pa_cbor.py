"""The subset of CBOR that COSE_Sign1 claim signatures use, decoded defensively (bounded depth; a
malformed buffer raises `CborError`, a ValueError). Split out of c2pa_store, which re-exports it.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Optional, Tuple

MAX_CBOR_DEPTH = 32


class CborError(ValueError):
    pass


@dataclass(frozen=True)
class Tagged:
    tag: int
    value: Any


def cbor_decode(buf: bytes) -> Any:
    value, end = _cbor(buf, 0, 0)
    return value


def _cbor(b: bytes, i: int, depth: int) -> Tuple[Any, int]:
    if depth > MAX_CBOR_DEPTH:
        raise CborError("nested too deep")
    if i >= len(b):
        raise CborError("truncated")
    ib = b[i]
    major, info = ib >> 5, ib & 31
    i += 1

    def arg(i: int) -> Tuple[Optional[int], int]:
        if info < 24:
            return info, i
        if info == 31:
            return None, i
        n = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
        if n is None or i + n > len(b):
            raise CborError("bad length")
        return int.from_bytes(b[i:i + n], "big"), i + n

    if major == 7:
        if info in (20, 21):
            return info == 21, i
        if info in (22, 23):
            return None, i
        if info == 25:
            return struct.unpack(">e", b[i:i + 2])[0], i + 2
        if info == 26:
            return struct.unpack(">f", b[i:i + 4])[0], i + 4
        if info == 27:
            return struct.unpack(">d", b[i:i + 8])[0], i + 8
        if info < 24:
            return info, i
        if info == 24:
            return b[i], i + 1
        raise CborError("bad simple value")
    n, i = arg(i)
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        if n is None:  # indefinite: chunks until break
            chunks = []
            while i < len(b) and b[i] != 0xFF:
                c, i = _cbor(b, i, depth + 1)
                chunks.append(c)
            raw = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
            i += 1
        else:
            if i + n > len(b):
                raise CborError("string past the end")
            raw, i = b[i:i + n], i + n
        return (raw if major == 2 else raw.decode("utf-8", "replace")), i
    if major == 4:
        out = []
        while (n is None and i < len(b) and b[i] != 0xFF) or (n is not None and len(out) < n):
            v, i = _cbor(b, i, depth + 1)
            out.append(v)
        return out, i + (1 if n is None else 0)
    if major == 5:
        d: Dict[Any, Any] = {}
        count = 0
        while (n is None and i < len(b) and b[i] != 0xFF) or (n is not None and count < n):
            k, i = _cbor(b, i, depth + 1)
            v, i = _cbor(b, i, depth + 1)
            d[k if not isinstance(k, (list, dict)) else repr(k)] = v
            count += 1
        return d, i + (1 if n is None else 0)
    if major == 6:
        v, i = _cbor(b, i, depth + 1)
        return Tagged(n, v), i
    raise CborError("bad major type")

"""Read only the parts of a file that c2pa_store looks at, not the whole file a second time (c2pa's Reader
has just read and hashed every byte of it).

Each reader returns a stand-in for the file's bytes on which c2pa_store's `manifest_store` and
`bmff_unsigned` give exactly what they give on the whole file, whenever the manifest store sits where
the container keeps it (JPEG: the APP11 segments before the scan; PNG: the first `caBX` chunk; ISO BMFF:
the C2PA `uuid` box). Where it does not, c2pa_store.scan_file falls back to reading the whole file.

- `jpeg_head`: the file's first bytes, through the marker that ends the metadata segments (SOS / EOI);
- `png_store_chunk`: the PNG signature and the first `caBX` chunk, found by seeking from chunk to chunk;
- `bmff_skeleton`: the top-level boxes, those c2pa_store reads kept whole, free/skip boxes re-made with as
  many non-zero bytes as they hold, every other box (`mdat`...) shrunk to an empty box of its type.
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Optional

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STEP = 1 << 16                    # JPEG metadata is read in pieces of this size


def jpeg_head(f: BinaryIO, size: int) -> Optional[bytes]:
    """The bytes of a JPEG up to where c2pa_store._jpeg_store's segment walk stops (None: not a JPEG)."""
    f.seek(0)
    buf = bytearray(f.read(min(size, STEP)))
    if not buf.startswith(b"\xff\xd8"):
        return None

    def need(n: int) -> bool:
        while len(buf) < n:
            chunk = f.read(max(STEP, n - len(buf)))
            if not chunk:
                break
            buf.extend(chunk)
        return len(buf) >= n

    i = 2
    while need(i + 4) and buf[i] == 0xFF:           # the same walk as _jpeg_store
        marker = buf[i + 1]
        if marker in (0xD9, 0xDA):
            break
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 1 if marker == 0xFF else 2
            continue
        i += 2 + struct.unpack(">H", buf[i + 2:i + 4])[0]
        need(i)
    return bytes(buf)


def png_store_chunk(f: BinaryIO, size: int) -> Optional[bytes]:
    """The PNG signature followed by the file's first `caBX` chunk (with its CRC), or None."""
    f.seek(0)
    if f.read(8) != PNG_SIGNATURE:
        return None
    i = 8
    while i + 12 <= size:                           # the same walk as _png_store
        f.seek(i)
        head = f.read(8)
        if len(head) < 8:
            return None
        n, kind = struct.unpack(">I4s", head)
        if kind == b"caBX":
            return PNG_SIGNATURE + head + f.read(n + 4)
        i += 12 + n
    return None


def bmff_skeleton(f: BinaryIO, size: int, keep_max: int) -> bytes:
    """A small stand-in for a BMFF file: ftyp/uuid/mfra boxes up to `keep_max` bytes kept whole, free/skip
    boxes streamed and re-made with their length (up to `keep_max`) and count of non-zero bytes, every
    other box an empty box of its type."""
    out = bytearray()
    pos = 0
    while pos + 8 <= size:
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            break
        n, kind = struct.unpack(">I4s", head[:8])
        hdr = 8
        if n == 1:
            if len(head) < 16:
                break
            n, hdr = struct.unpack(">Q", head[8:16])[0], 16
        elif n == 0:
            n = size - pos
        if n < hdr:
            break
        if kind in (b"ftyp", b"uuid", b"mfra") and n <= keep_max:
            f.seek(pos)
            out += f.read(n)
        elif kind in (b"free", b"skip"):
            f.seek(pos + hdr)
            left, nonzero = n - hdr, 0
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:                        # a box cut short by the end of the file
                    break
                nonzero += len(chunk) - chunk.count(0)
                left -= len(chunk)
            body_len = min(n - hdr - left, keep_max)
            body = bytes([1]) * min(nonzero, body_len) + bytes(body_len - min(nonzero, body_len))
            out += struct.pack(">I4s", 8 + len(body), kind) + body
        else:
            out += struct.pack(">I4s", 8, kind)
        pos += n
    return bytes(out)

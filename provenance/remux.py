"""Packet-level remux of an MP4 (no re-encode) with the video packets passed through an edit.

What a tamperer with a bitstream editor does: alter, drop, insert or swap single coded frames while the
rest of the file stays byte-identical. The demo uses it to show `check` locating an altered frame; the
tests use it for every tamper case.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, List, Optional

import av


@dataclass
class Pkt:
    data: bytes
    pts: Optional[int]
    dts: Optional[int]
    key: bool


def read_video_packets(path: Path) -> List[Pkt]:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        return [Pkt(bytes(p), p.pts, p.dts, bool(p.is_keyframe)) for p in c.demux(vs) if p.size]


def remux_edit(src: Path, dst: Path, edit: Callable[[List[Pkt]], List[Pkt]] = lambda x: x,
               faststart: bool = False) -> Path:
    """Copy src to dst with the video packets passed through `edit`; audio is copied unchanged."""
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        video = [Pkt(bytes(p), p.pts, p.dts, bool(p.is_keyframe)) for p in inp.demux(vin) if p.size]
        inp.seek(0)
        audio = [(bytes(p), p.pts, p.dts) for p in inp.demux(ain) if p.size] if ain is not None else []
        opts = {"movflags": "faststart"} if faststart else {}
        with av.open(str(dst), "w", format="mp4", options=opts) as out:
            vout = out.add_stream_from_template(vin)
            aout = out.add_stream_from_template(ain) if ain is not None else None
            for p in edit(video):
                pkt = av.Packet(p.data)
                pkt.pts, pkt.dts, pkt.time_base, pkt.is_keyframe = p.pts, p.dts, vin.time_base, p.key
                pkt.stream = vout
                out.mux(pkt)
            for data, pts, dts in audio:
                pkt = av.Packet(data)
                pkt.pts, pkt.dts, pkt.time_base = pts, dts, ain.time_base
                pkt.stream = aout
                out.mux(pkt)
    return Path(dst)


def alter_frame(k: int):
    """Flip one byte near the end of coded frame k (the slice data, not its header)."""
    def f(pkts: List[Pkt]) -> List[Pkt]:
        d = bytearray(pkts[k].data)
        d[-3] ^= 0x55
        pkts[k] = replace(pkts[k], data=bytes(d))
        return pkts
    return f

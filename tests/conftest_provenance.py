"""Shared helpers for the provenance tests (imported by tests/test_provenance_*.py; not a conftest).

`remux_edit` rewrites an MP4 packet by packet (no re-encode), so tests can alter, drop, insert and
swap single coded frames the way a tamperer with a bitstream editor would.
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


def frame_step(pkts: List[Pkt]) -> int:
    return pkts[1].dts - pkts[0].dts


def alter(k: int):
    """Flip one byte near the end of coded frame k (the slice data, not its header)."""
    def f(pkts: List[Pkt]) -> List[Pkt]:
        d = bytearray(pkts[k].data)
        d[-3] ^= 0x55
        pkts[k] = replace(pkts[k], data=bytes(d))
        return pkts
    return f


def shift(pkts: List[Pkt], start: int, by: int) -> None:
    for j in range(start, len(pkts)):
        p = pkts[j]
        pkts[j] = replace(p, pts=None if p.pts is None else p.pts + by, dts=None if p.dts is None else p.dts + by)


def drop(k: int):
    """Cut coded frame k and close the gap (later frames move one frame earlier)."""
    def f(pkts: List[Pkt]) -> List[Pkt]:
        step = frame_step(pkts)
        del pkts[k]
        shift(pkts, k, -step)
        return pkts
    return f


def insert(k: int, data: Optional[bytes] = None):
    """Insert a frame after coded frame k (a copy of frame k unless `data`), later frames move on."""
    def f(pkts: List[Pkt]) -> List[Pkt]:
        step = frame_step(pkts)
        new = Pkt(data if data is not None else pkts[k].data, pkts[k].pts + step, pkts[k].dts + step, False)
        shift(pkts, k + 1, step)
        pkts.insert(k + 1, new)
        return pkts
    return f


def swap(k: int):
    """Exchange the coded data of frames k and k+1, keeping the timestamps where they were."""
    def f(pkts: List[Pkt]) -> List[Pkt]:
        a, b = pkts[k], pkts[k + 1]
        pkts[k], pkts[k + 1] = replace(a, data=b.data, key=b.key), replace(b, data=a.data, key=a.key)
        return pkts
    return f


def reencode(src: Path, dst: Path, crf: int = 23) -> Path:
    """Decode every frame and encode it again with libx264 (same size and rate): new bytes everywhere."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=vin.average_rate)
        vs.width, vs.height, vs.pix_fmt = vin.width, vin.height, "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in inp.decode(vin):
            frame.pict_type = av.video.frame.PictureType.NONE
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return Path(dst)

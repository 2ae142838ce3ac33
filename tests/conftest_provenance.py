"""Shared helpers for the provenance tests (imported by tests/test_provenance_*.py; not a conftest).

`remux_edit` (from `provenance.remux`) rewrites an MP4 packet by packet (no re-encode), so tests can
alter, drop, insert and swap single coded frames the way a tamperer with a bitstream editor would.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import av

from provenance.remux import Pkt, read_video_packets, remux_edit  # noqa: F401 - re-exported
from provenance.remux import alter_frame as alter  # noqa: F401 - re-exported


def frame_step(pkts: List[Pkt]) -> int:
    return pkts[1].dts - pkts[0].dts


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

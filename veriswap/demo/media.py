"""Media the demo makes for its checks: a copy with one media byte flipped (C2PA), a copy with one coded
frame altered (footage tags), and mirrored copies of clips and of their labels (more detect material)."""
from __future__ import annotations

import os
from pathlib import Path

from swap.errors import InputError
from swap.labels import FaceLabel, FrameLabel, Labels


def flip_media_byte(src: Path, dst: Path) -> int:
    """Copy an MP4 and flip one byte in the middle of its media data (`mdat`); returns the offset."""
    data = bytearray(Path(src).read_bytes())
    pos, target = 0, None
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = bytes(data[pos + 4:pos + 8])
        head = 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if kind == b"mdat":
            target = pos + head + (size - head) // 2
            break
        if size < 8:
            break
        pos += size
    if target is None:
        raise InputError(f"no media data box in {src}")
    data[target] ^= 0x01
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(data))
    return target


def alter_coded_frame(src: Path, dst: Path, k: int) -> None:
    """Remux `src` to `dst` (no re-encode) with one byte near the end of coded video frame `k` changed,
    the way a bitstream editor alters a frame; audio and every other frame are copied unchanged."""
    from provenance.remux import alter_frame, remux_edit

    def edit(pkts):
        if not 0 <= k < len(pkts):
            raise InputError(f"frame {k} is outside the video (0..{len(pkts) - 1})")
        return alter_frame(k)(pkts)

    dst.parent.mkdir(parents=True, exist_ok=True)
    remux_edit(src, dst, edit)


def mirror_video(src: Path, dst: Path) -> None:
    """Write a left-right mirrored copy of `src` (video only, same frame count and rate)."""
    import av

    tmp = dst.with_name(f".{dst.stem}.tmp.mp4")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=vin.average_rate or 25)
        vs.width, vs.height, vs.pix_fmt = vin.width, vin.height, "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        for i, fr in enumerate(inp.decode(vin)):
            f = av.VideoFrame.from_ndarray(fr.to_ndarray(format="rgb24")[:, ::-1].copy(), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    os.replace(tmp, dst)


def mirror_labels(labels: Labels, source: Path, width: int) -> Labels:
    """Labels for the mirrored copy of a convert output: boxes and landmarks flipped, the mirrored real clip
    as its source (so the dataset split keeps the pair in one group)."""
    def fx(x: float) -> float:
        return round(width - float(x), 2)

    frames = []
    for fr in labels.frames:
        faces = []
        for f in fr.faces:
            x0, y0, x1, y1 = f.box
            faces.append(FaceLabel(box=[fx(x1), y0, fx(x0), y1], face=f.face, track=f.track,
                                   landmarks=[[fx(x), y] for x, y in f.landmarks] if f.landmarks else None))
        frames.append(FrameLabel(fr.index, fr.time, fr.swapped, faces))
    return Labels(source=str(Path(source).resolve()), mirrored_from=labels.output, width=labels.width,
                  height=labels.height, direction=labels.direction, frames=frames, version=labels.version)

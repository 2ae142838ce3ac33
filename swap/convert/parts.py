"""Resumable convert: the output is encoded in segments of N frames, each finished one kept in a work
folder beside OUT (`.OUT.mp4.parts/` for OUT.mp4), so a convert that was interrupted (Ctrl-C, a crash, a reboot) and is
run again with the same command starts at its first unfinished segment. At the end the segments are
joined without re-encoding (a packet remux: each segment starts with a keyframe and carries its own
B-frame delay, so the joined timestamps stay monotonic) and the source's audio is added.

A segment counts as done once its labels (`seg_NNNNNN.json`) are written, atomically, after its video
(`seg_NNNNNN.mp4`, atomic too). The plan (`plan.json`: source, model, alignments, settings) must match
for a resume; a changed input or setting starts over.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import List, Optional

from ..lock import LOCK_NAME
from ..video import atomic_write_bytes

PLAN_VERSION = 1


@dataclass
class Parts:
    folder: Path
    segment_frames: int

    def video(self, k: int) -> Path:
        return self.folder / f"seg_{k:06d}.mp4"

    def meta(self, k: int) -> Path:
        return self.folder / f"seg_{k:06d}.json"

    def done(self) -> List[dict]:
        """Finished segments in order, up to the first missing or damaged one (later ones are dropped)."""
        out: List[dict] = []
        k = 0
        while True:
            try:
                m = json.loads(self.meta(k).read_bytes())
            except (OSError, ValueError):
                break
            if not self.video(k).is_file() or m.get("segment") != k:
                break
            out.append(m)
            k += 1
        for p in self.folder.glob("seg_*"):        # anything past that point is redone
            if p.suffix in (".mp4", ".json") and int(p.stem[4:]) >= k:
                p.unlink()
        return out

    def finish(self, k: int, meta: dict) -> None:
        atomic_write_bytes(self.meta(k), json.dumps({"segment": k, **meta}, separators=(",", ":")).encode())

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def parts_folder(out: Path) -> Path:
    return Path(out).parent / f".{Path(out).name}.parts"


def open_parts(out: Path, plan: dict, segment_frames: int) -> tuple:
    """(Parts, resumed?) for OUT: the existing work folder when its plan matches, else a fresh one."""
    folder = parts_folder(out)
    plan = {"version": PLAN_VERSION, "segment_frames": segment_frames, **plan}
    blob = json.dumps(plan, sort_keys=True, default=str).encode()
    resumed = False
    if folder.is_dir():
        try:
            resumed = (folder / "plan.json").read_bytes() == blob
        except OSError:
            resumed = False
        if not resumed:     # another plan: start over (the lock file stays: its holder is this process)
            for p in folder.iterdir():
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.name != LOCK_NAME:
                    p.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    if not resumed:
        atomic_write_bytes(folder / "plan.json", blob)
    return Parts(folder, segment_frames), resumed


def join_segments(videos: List[Path], out: Path, fps: float, audio_from: Optional[Path]) -> None:
    """Concatenate H.264 segment files into `out` (MP4, no re-encode) and add `audio_from`'s audio
    (both streams are declared before the first packet: the MP4 header is written then)."""
    import av

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(out), mode="w", format="mp4") as dst, av.open(str(videos[0])) as first:
        vout = dst.add_stream_from_template(first.streams.video[0])
        audio = av.open(str(audio_from)) if audio_from is not None else None
        try:
            aout = dst.add_stream_from_template(audio.streams.audio[0]) if audio and audio.streams.audio else None
            offset = 0                              # frames before the current segment
            for path in videos:
                with av.open(str(path)) as src:
                    vin = src.streams.video[0]
                    shift = int(round(offset / rate / vin.time_base))
                    n = 0
                    for pkt in src.demux(vin):
                        if pkt.dts is None:         # the demuxer's end-of-stream flush packet
                            continue
                        pkt.pts = None if pkt.pts is None else pkt.pts + shift
                        pkt.dts += shift
                        pkt.stream = vout
                        dst.mux(pkt)
                        n += 1
                    offset += n
            if aout is not None:
                ain = audio.streams.audio[0]
                for pkt in audio.demux(ain):
                    if pkt.dts is None:
                        continue
                    pkt.stream = aout
                    dst.mux(pkt)
        finally:
            if audio is not None:
                audio.close()

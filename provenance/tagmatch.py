"""Streaming alignment of received video frames against the authenticated tagged frames.

Emits one status per event in stream order, in the manner of signed-video verifiers:
  '.' authentic: the next expected tagged frame, same bytes (timestamps are judged by the caller)
  'N' not authentic: a frame in the place of a tagged frame whose bytes differ, or whose tag entry
      failed authentication
  'M' missing: a tagged frame that is not in the video here (dropped, or the video ends early)
  'X' extra / out of order: a frame with no place at this point (inserted, duplicated, moved)
Both sides are looked ahead by at most `window` frames, so memory stays flat for any length.

Long function: `align` is one state machine over two look-ahead windows; split, its cases would be read
apart from the state they share.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Iterable, Iterator, Optional

from .frames import FrameHash
from .tagfile import TagEntry

WINDOW = 256


@dataclass(slots=True)
class Event:
    status: str
    video: Optional[FrameHash]      # None for 'M'
    tag: Optional[TagEntry]         # None for 'X'


def _inc(d: Dict[bytes, int], k: bytes) -> None:
    d[k] = d.get(k, 0) + 1


def _dec(d: Dict[bytes, int], k: bytes) -> None:
    n = d[k] - 1
    if n:
        d[k] = n
    else:
        del d[k]


def align(video: Iterable[FrameHash], tags: Iterable[TagEntry], window: int = WINDOW) -> Iterator[Event]:
    vnext, tnext = iter(video).__next__, iter(tags).__next__
    vbuf: Deque[FrameHash] = deque()
    tbuf: Deque[TagEntry] = deque()
    vpush, tpush, vpop, tpop = vbuf.append, tbuf.append, vbuf.popleft, tbuf.popleft
    # multisets of the digests in each buffer; keys leave when their count drops to 0, so memory is
    # bounded by the window, not by the length of the footage
    vcount: Dict[bytes, int] = {}
    tcount: Dict[bytes, int] = {}    # authentic entries only
    displaced: Dict[bytes, int] = {}  # tagged frames overtaken by a later one: 'X' when they turn up
    v_more = t_more = True

    def pop_v() -> FrameHash:
        fr = vpop()
        _dec(vcount, fr.digest)
        return fr

    def pop_t() -> TagEntry:
        te = tpop()
        if te.digest is not None:
            _dec(tcount, te.digest)
        return te

    while True:
        # keep both look-ahead buffers full (in steady state: one frame and one entry per event);
        # the bookkeeping is inlined, this loop runs once per frame
        while v_more and len(vbuf) < window:
            try:
                fr = vnext()
            except StopIteration:
                v_more = False
                break
            vpush(fr)
            d = fr.digest
            vcount[d] = vcount.get(d, 0) + 1
        while t_more and len(tbuf) < window:
            try:
                te = tnext()
            except StopIteration:
                t_more = False
                break
            tpush(te)
            d = te.digest
            if d is not None:
                tcount[d] = tcount.get(d, 0) + 1
        if not vbuf or not tbuf:
            if not vbuf and not tbuf:
                return
            if not vbuf:
                yield Event("M", None, pop_t())
            else:
                yield Event("X", pop_v(), None)
            continue
        v, t = vbuf[0], tbuf[0]
        vd = v.digest
        if vd == t.digest:  # the common case: the next tagged frame, same bytes (an entry that failed
            vpop()          # authentication has digest None and never matches)
            tpop()
            n = vcount[vd] - 1
            if n:
                vcount[vd] = n
            else:
                del vcount[vd]
            n = tcount[vd] - 1
            if n:
                tcount[vd] = n
            else:
                del tcount[vd]
            if displaced and vd in displaced:
                _dec(displaced, vd)
                yield Event("X", v, t)
            else:
                yield Event(".", v, t)
            continue
        v_later_in_tags = vd in tcount                           # v belongs further on
        t_later_in_video = t.digest is not None and t.digest in vcount   # t turns up further on
        if not v_later_in_tags and not t_later_in_video:
            yield Event("N", pop_v(), pop_t())                   # substitution: altered frame
        elif not v_later_in_tags:
            yield Event("X", pop_v(), None)                      # inserted before the expected frame
        elif not t_later_in_video:
            yield Event("M", None, pop_t())                      # the expected frame was dropped
        else:
            # reordered: v jumped ahead of t. Take v's tag out of the queue; t is marked when it arrives
            fr = pop_v()
            for j, te in enumerate(tbuf):
                if te.digest == fr.digest:
                    del tbuf[j]
                    _dec(tcount, fr.digest)
                    break
            _inc(displaced, t.digest)
            yield Event("X", fr, te)

"""Streaming alignment of received video frames against the authenticated tagged frames.

Emits one status per event in stream order, in the manner of signed-video verifiers:
  '.' authentic: the next expected tagged frame, same bytes (timestamps are judged by the caller)
  'N' not authentic: a frame in the place of a tagged frame whose bytes differ, or whose tag entry
      failed authentication
  'M' missing: a tagged frame that is not in the video here (dropped, or the video ends early)
  'X' extra / out of order: a frame with no place at this point (inserted, duplicated, moved)
Both sides are looked ahead by at most `window` frames, so memory stays flat for any length.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Deque, Iterable, Iterator, Optional

from .frames import FrameHash
from .tagfile import TagEntry

WINDOW = 256


@dataclass
class Event:
    status: str
    video: Optional[FrameHash]      # None for 'M'
    tag: Optional[TagEntry]         # None for 'X'


def align(video: Iterable[FrameHash], tags: Iterable[TagEntry], window: int = WINDOW) -> Iterator[Event]:
    vit, tit = iter(video), iter(tags)
    vbuf: Deque[FrameHash] = deque()
    tbuf: Deque[TagEntry] = deque()
    vcount: Counter = Counter()      # digests in vbuf
    tcount: Counter = Counter()      # digests in tbuf (authentic entries only)
    displaced: Counter = Counter()   # tagged frames overtaken by a later one: 'X' when they turn up
    v_done = t_done = False

    def fill() -> None:
        nonlocal v_done, t_done
        while not v_done and len(vbuf) < window:
            fr = next(vit, None)
            if fr is None:
                v_done = True
            else:
                vbuf.append(fr)
                vcount[fr.digest] += 1
        while not t_done and len(tbuf) < window:
            te = next(tit, None)
            if te is None:
                t_done = True
            else:
                tbuf.append(te)
                if te.digest is not None:
                    tcount[te.digest] += 1

    def pop_v() -> FrameHash:
        fr = vbuf.popleft()
        vcount[fr.digest] -= 1
        return fr

    def pop_t() -> TagEntry:
        te = tbuf.popleft()
        if te.digest is not None:
            tcount[te.digest] -= 1
        return te

    while True:
        fill()
        if not vbuf and not tbuf:
            return
        if not vbuf:
            yield Event("M", None, pop_t())
            continue
        if not tbuf:
            yield Event("X", pop_v(), None)
            continue
        v, t = vbuf[0], tbuf[0]
        if t.digest is not None and v.digest == t.digest:
            pop_v(), pop_t()
            if displaced[v.digest] > 0:
                displaced[v.digest] -= 1
                yield Event("X", v, t)
            else:
                yield Event(".", v, t)
            continue
        v_later_in_tags = tcount[v.digest] > 0                  # v belongs further on
        t_later_in_video = t.digest is not None and vcount[t.digest] > 0   # t turns up further on
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
                    tcount[fr.digest] -= 1
                    break
            displaced[t.digest] += 1
            yield Event("X", fr, te)

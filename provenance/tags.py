"""Tamper-evident footage for cameras without C2PA: `tag_video` (camera side) and `check_video`.

Both stream the file packet by packet (no decoding), so memory stays flat for multi-GB footage.
The tag file format is documented in `tagfile.py` and docs/provenance.md.
"""
from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import av
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .tagmatch import WINDOW, align
from .errors import KeyFileError, ProvenanceError, TagFormatError
from .frames import DEFAULT_WORKERS, iter_frame_hashes, open_video, stream_params
from .fsutil import atomic_open
from .keys import decrypt_tag_secret, is_encrypted_tag_key, load_private_key
from .tagfile import DEFAULT_GROUP, Key, TagSummary, TagWriter, key_id, read_entries

MODE_ALIASES = {"hmac": "hmac-sha256", "hmac-sha256": "hmac-sha256", "ed25519": "ed25519"}
MIN_SECRET = 16
REPORT_VERSION = 1


def load_tag_key(path: Union[str, Path], passphrase: Optional[bytes] = None) -> Key:
    """A tag key file: PEM (Ed25519 private key, public key or certificate) or an HMAC secret
    (hex text as written by keygen's tag.key, otherwise the raw bytes, at least 16), possibly encrypted
    with a passphrase (keygen --passphrase-env: `passphrase` decrypts it)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no key file: {path}") from None
    except IsADirectoryError:
        raise KeyFileError(f"expected a key file, got a folder: {path} (tag.key is inside it)") from None
    if is_encrypted_tag_key(data):
        data = decrypt_tag_secret(data, passphrase, path)
    elif b"-----BEGIN" in data[:4096]:
        if b"CERTIFICATE-----" in data:
            try:
                pub = x509.load_pem_x509_certificates(data)[0].public_key()
            except ValueError:
                raise KeyFileError(f"not a PEM certificate: {path}") from None
        elif b"PRIVATE KEY-----" in data:
            pub = load_private_key(path, passphrase)
        else:
            try:
                pub = serialization.load_pem_public_key(data)
            except ValueError:
                raise KeyFileError(f"not a PEM key: {path}") from None
        if not isinstance(pub, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
            raise KeyFileError(f"{path}: footage tags use Ed25519 keys only")
        return pub
    text = data.strip()
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        secret = data
    if len(secret) < MIN_SECRET:
        raise KeyFileError(f"{path}: an HMAC secret must be at least {MIN_SECRET} bytes")
    return secret


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise ProvenanceError(f"no video stream in: {path}")
    return container.streams.video[0]


def tag_video(video: Union[str, Path], key: Union[Key, str, Path], mode: str = "hmac", out: Optional[Union[str, Path]] = None,
              group: int = DEFAULT_GROUP, progress: Optional[Callable[[int], None]] = None,
              workers: int = DEFAULT_WORKERS) -> Path:
    """Write the tag file for `video` (default `VIDEO.tags`) and return its path. `key` is the HMAC
    secret (bytes), an Ed25519 private key, or the path of a key file (see load_tag_key)."""
    video = Path(video)
    if isinstance(key, (str, Path)):
        key = load_tag_key(key)
    mode = MODE_ALIASES.get(mode, mode)
    if mode not in MODE_ALIASES.values():
        raise ProvenanceError(f"unknown tag mode {mode!r}; use hmac or ed25519")
    if not 1 <= group <= 100_000:
        raise ProvenanceError("group size must be between 1 and 100000 frames")
    out = Path(out) if out is not None else default_tags_path(video)
    try:
        container = open_video(video)
    except av.error.FFmpegError as e:
        raise ProvenanceError(f"not a readable video: {video} ({type(e).__name__})") from None
    try:
        stream = _video_stream(container, video)
        header = {"stream": stream_params(stream), "video": video.name}
        with atomic_open(out, mode=0o644) as f:
            w = TagWriter(f, mode, key, header, group)
            try:
                w.add_all(iter_frame_hashes(container, stream, progress, workers))
            except av.error.FFmpegError as e:
                raise ProvenanceError(f"video became unreadable after {w.n} frames: {video} "
                                      f"({type(e).__name__})") from None
            if w.n == 0:
                raise ProvenanceError(f"no video frames in: {video}")
            w.finish()
    finally:
        container.close()
    return out


@dataclass
class FirstBad:
    status: str
    position: int                     # index in the status string
    video_index: Optional[int]        # frame index in the video (decode order); None for 'M'
    tag_index: Optional[int]          # tagged frame index; None for 'X' with no tagged counterpart
    time: Optional[float]             # seconds: the video frame's, or the tagged frame's for 'M'


@dataclass
class CheckReport:
    video: str
    tags: str
    mode: str
    status: str                       # one character per event, see align.py
    frames_tagged: int
    frames_video: int
    counts: Dict[str, int]
    first_bad: Optional[FirstBad]
    key_matches: bool                 # the key id in the tag file is this key's
    tags_authentic: bool              # every entry, group and the end line verified
    stream_matches: bool              # codec, size and extradata (SPS/PPS) as tagged
    problems: List[str] = field(default_factory=list)
    report_version: int = REPORT_VERSION

    @property
    def ok(self) -> bool:
        return (set(self.status) <= {"."} and self.frames_tagged > 0 and self.key_matches
                and self.tags_authentic and self.stream_matches and not self.problems)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)


def _open_stream(video: Path, head: dict, progress: Optional[Callable[[int], None]], workers: int,
                 problems: List[str], video_frames: List[int]) -> Tuple[Any, Any, bool]:
    """(the opened container or None, the video's frame hashes, whether its stream matches the tagged one);
    what does not match goes into `problems`. A file nothing demuxes from raises ProvenanceError."""
    container = None
    stream_ok = True
    vframes: Any = iter(())
    try:
        try:
            container = open_video(video)
        except av.error.FFmpegError as e:
            # nothing demuxes at all (garbage, or cut before its index): unusable input, as for `tag`
            raise ProvenanceError(f"not a readable video: {video} ({type(e).__name__}: truncated, "
                                  f"damaged or not a video)") from None
        stream = container.streams.video[0] if container.streams.video else None
        if stream is None:
            stream_ok = False
            problems.append("the file has no video stream: not this footage")
        else:
            params = stream_params(stream)
            tagged = head.get("stream") or {}
            diff = [k for k in ("codec", "width", "height", "extradata_sha256")
                    if tagged.get(k) != params.get(k)]
            if diff:
                stream_ok = False
                problems.append("stream parameters differ from the tagged ones: " + ", ".join(
                    f"{k} {str(tagged.get(k))[:16]} -> {str(params.get(k))[:16]}" for k in diff))
            vframes = _counting(iter_frame_hashes(container, stream, progress, workers), video_frames,
                                problems)
    except av.error.FFmpegError as e:
        # opened, but its streams cannot be set up: every tagged frame is missing
        problems.append(f"the video cannot be read ({type(e).__name__}): truncated or not this footage")
        stream_ok = False
    return container, vframes, stream_ok


def _walk(vframes: Any, tag_events: Any, window: int, tag_tb: Any
          ) -> Tuple[bytearray, Optional["FirstBad"], int, "_Timing"]:
    """Align the video's frames with the tags: (one status byte per position, the first bad one, how many
    tagged frames, the timing seen)."""
    chars = bytearray()  # one byte per frame: an hour of 60 fps footage is 216 kB
    first_bad: Optional[FirstBad] = None
    tagged_n = 0
    timing = _Timing(tag_tb)
    see = timing.see
    for ev in align(vframes, tag_events, window):
        if ev.status == ".":  # one frame in the place of its tagged frame: the common case
            tagged_n += 1
            see(ev.video, ev.tag)
            chars.append(46)  # "."
            continue
        if ev.tag is not None:
            tagged_n += 1
        if first_bad is None:
            fr = ev.video
            first_bad = FirstBad(ev.status, len(chars), fr.index if fr else None,
                                 ev.tag.index if ev.tag else None,
                                 fr.time if fr else _tag_time(ev.tag, tag_tb))
        chars.append(ord(ev.status))
    return chars, first_bad, tagged_n, timing


def check_video(video: Union[str, Path], tags: Union[str, Path], key: Union[Key, str, Path], window: int = WINDOW,
                progress: Optional[Callable[[int], None]] = None, workers: int = DEFAULT_WORKERS) -> CheckReport:
    """Verify `video` against its tag file with `key`; never raises for tampering, only for unusable
    input (missing files, a video that does not open at all, malformed tag file, wrong kind of key:
    ProvenanceError, exit 2; `tag` refuses the same videos).
    `key`: HMAC secret (bytes), Ed25519 public/private key, or the path of a key file."""
    video, tags = Path(video), Path(tags)
    if isinstance(key, (str, Path)):
        key = load_tag_key(key)
    if not tags.is_file():
        raise ProvenanceError(f"no such tag file: {tags}")
    if not video.exists() or video.is_dir():
        raise ProvenanceError(f"no such video file: {video}")
    problems: List[str] = []
    with open(tags, "rb") as tf:
        summaries: List[TagSummary] = []
        entries = read_entries(tf, key, summaries)
        first = next(entries, None)      # reads and checks the header before touching the video
        summary = summaries[0]
        head = summary.header
        tag_tb = _time_base(head)
        key_ok = head["key_id"] == key_id(key)
        if not key_ok:
            problems.append(f"wrong key: the tags were made with key {head['key_id']}, this key is {key_id(key)}")

        def tag_iter():
            if first is not None:
                yield first
            # parse and authenticate the tag file on a helper thread: it runs while the main thread
            # waits in SHA-256 (which releases the GIL); errors are re-raised here, in order
            yield from _prefetch(entries)

        video_frames: List[int] = [0]
        container, vframes, stream_ok = _open_stream(video, head, progress, workers, problems, video_frames)
        tag_events = tag_iter()
        try:
            chars, first_bad, tagged_n, timing = _walk(vframes, tag_events, window, tag_tb)
        finally:
            tag_events.close()  # stops the prefetch thread before the tag file is closed
            if container is not None:
                container.close()
    problems.extend(timing.problems())
    if summary.bad_entries:
        problems.append(f"{summary.bad_entries} tag entries fail authentication "
                        f"(first: frame {summary.first_bad_entry})")
    problems.extend(summary.problems)
    status = chars.decode("ascii")
    return CheckReport(
        video=str(video), tags=str(tags), mode=head["mode"], status=status, frames_tagged=tagged_n,
        frames_video=video_frames[0], counts=dict(Counter(status)), first_bad=first_bad, key_matches=key_ok,
        tags_authentic=summary.end_ok and not summary.bad_entries and not summary.problems,
        stream_matches=stream_ok, problems=problems)


class _Timing:
    """Presentation times must keep the offset they had at the first authentic frame: a shift means
    frames were cut/inserted before that point or retimed; a change that reverts means reordering."""

    MAX_REPORTED = 5

    def __init__(self, tag_tb: Fraction):
        self.tb = tag_tb
        self.seen = False
        self.base: object = None
        self.last: object = None
        self.shifts: List[str] = []
        self.count = 0
        self._ticks: Optional[int] = None
        self._tb_obj: Optional[Fraction] = None
        self._offset: Fraction = Fraction(0)
        self._same: Optional[int] = None  # tick offset whose d is self.last (the fast path in see)

    def see(self, fr, te) -> None:
        # offset of this frame's time from its tagged time; a missing timestamp on one side only is
        # a change of its own kind (compared as a tuple, never equal to a Fraction)
        fp, tp = fr.pts, te.pts
        if fp is not None and tp is not None and fp - tp == self._same and fr.time_base is self._tb_obj:
            return  # same time base and the same tick offset as the last frame seen: no change
        self._same = None
        if fp is None or tp is None:
            d: object = ("no pts", fr.pts is None, te.pts is None)
        elif fr.time_base is self._tb_obj or fr.time_base == self.tb:
            self._tb_obj = fr.time_base  # one object per stream: later frames skip the Fraction compare
            ticks = fr.pts - te.pts  # same time base: integer ticks, a Fraction only when they change
            if ticks != self._ticks:
                self._ticks, self._offset = ticks, Fraction(ticks) * self.tb
            d = self._offset
            self._same = ticks  # d stays self.last below: frames at this offset can skip all this
        else:
            d = fr.pts * fr.time_base - te.pts * self.tb
        if not self.seen:
            self.seen, self.base, self.last = True, d, d
            return
        if d != self.last:
            self.count += 1
            if len(self.shifts) < self.MAX_REPORTED:
                ok = isinstance(d, Fraction) and isinstance(self.base, Fraction)
                delta = f"{float(d - self.base):+.3f} s" if ok else "(timestamp missing)"
                self.shifts.append(f"video frame {fr.index} (tagged frame {te.index}): timeline offset {delta}")
            self.last = d

    def problems(self) -> List[str]:
        if not self.count:
            return []
        more = f" (+{self.count - len(self.shifts)} more)" if self.count > len(self.shifts) else ""
        return ["presentation times changed at " + "; ".join(self.shifts) + more]


_DONE = object()


def _prefetch(items, batch: int = 64, depth: int = 8):
    """Iterate `items` on a daemon thread, `batch` at a time, at most `depth` batches ahead."""
    q: "queue.Queue" = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        buf: list = []
        try:
            for x in items:
                buf.append(x)
                if len(buf) >= batch:
                    q.put(buf)
                    buf = []
                    if stop.is_set():
                        return
            q.put(buf)
            q.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            q.put(e)

    th = threading.Thread(target=run, name="vs-tags", daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        while th.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(0.01)


def _counting(frames, counter: List[int], problems: List[str]):
    """Count frames as they stream by; a demux error mid-file ends the stream (rest shows as 'M')."""
    try:
        for fr in frames:
            counter[0] += 1
            yield fr
    except av.error.FFmpegError as e:
        problems.append(f"the video stops being readable after {counter[0]} frames ({type(e).__name__})")


def _time_base(head: Dict[str, Any]) -> Fraction:
    tb = (head.get("stream") or {}).get("time_base")
    try:
        f = Fraction(tb) if isinstance(tb, str) else None
    except (ValueError, ZeroDivisionError):
        f = None
    if f is None or f <= 0:
        raise TagFormatError("tag file header: stream.time_base missing or not a positive fraction")
    return f


def _tag_time(te, tb: Fraction) -> Optional[float]:
    return None if te is None or te.pts is None else float(te.pts * tb)


def default_tags_path(video: Union[str, Path]) -> Path:
    video = Path(video)
    return video.with_name(video.name + ".tags")


__all__ = ["tag_video", "check_video", "load_tag_key", "CheckReport", "FirstBad", "default_tags_path"]

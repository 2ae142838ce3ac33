"""The alignments file: the contract between extract, convert and detect.

JSON, versioned (see README "Alignments file"). Per source -> per processed frame -> faces, each
with its box, 68 landmarks and affine matrix in *frame* pixels, identity embedding and blur score.
Every processed frame is present, also those without a face (an empty list), so a reader can
tell "no face here" from "not processed".

Also writes the faces folder's `faces.json` (crop-pixel landmarks), which `train` reads.

`load` reads a whole file into objects (convert, detect). Extract writes and re-reads the file as a
stream (`AlignmentsStore`): a long video has hundreds of MB of records, which it never holds at once.

Long module: one file format, read whole and streamed, and the faces.json index share one JSON spelling
(`_dumps`); split, that spelling would live in several modules.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from provenance.fsutil import atomic_open as _atomic_file
from provenance import schema as S
from provenance.fsutil import atomic_write_bytes, load_versioned_json

from .errors import InputError

FORMAT = "veriswap-alignments"
VERSION = 1
FACES_JSON_VERSION = 1


# ---- what a reader accepts (provenance.schema: a wrong type is one line naming file and field) -----

def _plain_name(v) -> None:
    if not isinstance(v, str) or not v or "/" in v or "\\" in v or v in (".", ".."):
        S.fail(f"expected a file name (no folders), got {S._got(v)}")


def _affine(v) -> None:
    """A 2x3 affine matrix whose 2x2 part is invertible (a crop can be mapped back into the frame)."""
    S.Array((2, 3), -PX, PX)(v)
    if abs(v[0][0] * v[1][1] - v[0][1] * v[1][0]) < 1e-12:
        S.fail("the 2x3 affine matrix is singular (its 2x2 part has no inverse)")


# pixel coordinates: within a million pixels of the frame (a 1e308 landmark is no face: convert's masks overflow)
PX = 1e6
LANDMARKS = S.Array((68, 2), -PX, PX, what="68 [x, y] points")
EMBEDDING = S.Array((128,), -100, 100, what="a 128-d embedding (128 numbers)")
FACE_SPEC = S.Obj({"face": S.Int(0), "track": S.Int(), "box": S.Array((4,), -PX, PX, what="a box [x0, y0, x1, y1]"),
                   "score": S.Num(), "keyframe": S.Bool(), "landmarks": LANDMARKS, "matrix": _affine,
                   "size": S.Int(8, 16384), "embedding": S.Opt(EMBEDDING), "blur": S.Num(), "file": _plain_name},
                  what="an object (a face record)")
FRAMES_SPEC = S.Map(S.List_(FACE_SPEC), key=S.int_key, key_what="a frame index",
                    what="an object (frame index -> faces)")
SOURCE_HEADER = {"path": S.Str(nonempty=True), "key": S.Str(nonempty=True), "width": S.Int(1), "height": S.Int(1),
                 "fps": S.Num(0), "frames_total": S.Int(0), "is_image": S.Bool(), "fingerprint": S.Map(S.Int()),
                 "complete": S.Bool()}
SOURCE_SPEC = S.Obj(SOURCE_HEADER, {"frames": FRAMES_SPEC}, what="an object (a source record)")
ALIGNMENTS_SPEC = S.Obj({"settings": S.Obj(), "sources": S.Map(SOURCE_SPEC, what="an object (source path -> record)")},
                        {"created_by": S.Opt(S.Str())})
_SOURCES = S.Obj({"sources": S.Map(SOURCE_SPEC)})             # the streamed reader's checks, piece by piece
_SOURCE_HEADERS = S.Obj({"sources": S.Map(S.Obj(SOURCE_HEADER))})
_SOURCE_FRAMES = S.Obj({"sources": S.Map(S.Obj({"frames": FRAMES_SPEC}))})
FACES_JSON_ENTRY = S.Obj(optional={"source": S.Opt(S.Str()), "frame": S.Opt(S.Int(0)), "face": S.Opt(S.Int(0)),
                                   "landmarks": S.Opt(LANDMARKS), "embedding": S.Opt(EMBEDDING),
                                   "blur": S.Opt(S.Num())}, what="an object (a face's entry)")
FACES_JSON_SPEC = S.Obj({"faces": S.Map(FACES_JSON_ENTRY, what="an object (file name -> entry)")},
                        {"version": S.Int(FACES_JSON_VERSION, FACES_JSON_VERSION), "size": S.Int(1)},
                        what="an object (a faces.json index)")


@dataclass
class FaceRecord:
    """One face in one frame. Coordinates in source-frame pixels."""

    face: int                       # index within the frame (largest first)
    track: int                      # id of the face track within the source (stable across frames)
    box: List[float]                # x0, y0, x1, y1: detector box, or the tracked box between detections
    score: float                    # detector score (carried along a track between detections)
    keyframe: bool                  # True where the detector ran on this frame
    landmarks: List[List[float]]    # 68 x [x, y] (smoothed over time for videos)
    matrix: List[List[float]]       # 2x3 affine: frame px -> aligned crop px
    size: int                       # aligned crop side in px
    embedding: Optional[List[float]]  # 128-d dlib embedding (refreshed per track, see README)
    blur: float                     # variance of the Laplacian of the aligned crop
    file: str                       # aligned crop's file name in the faces folder

    @classmethod
    def from_dict(cls, d: dict) -> "FaceRecord":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def landmarks_array(self) -> np.ndarray:
        return np.asarray(self.landmarks, np.float32)

    def matrix_array(self) -> np.ndarray:
        return np.asarray(self.matrix, np.float64)


@dataclass
class SourceRecord:
    path: str
    key: str                        # stem used in face file names
    width: int
    height: int
    fps: float
    frames_total: int               # frames in the source (container count for videos)
    is_image: bool
    fingerprint: Dict[str, int]     # size + mtime_ns: a changed file is re-extracted
    complete: bool = False
    frames: Dict[int, List[FaceRecord]] = field(default_factory=dict)

    def header(self) -> dict:
        """Every field but `frames`, in file order."""
        return {k: v for k, v in asdict(self).items() if k != "frames"}

    def to_json(self) -> dict:
        d = self.header()
        d["frames"] = {str(i): [asdict(f) for f in fs] for i, fs in sorted(self.frames.items())}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "SourceRecord":
        frames = {int(i): [FaceRecord.from_dict(f) for f in fs] for i, fs in d.get("frames", {}).items()}
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k != "frames"}
        return cls(**fields, frames=frames)

    def faces(self) -> Iterator[Tuple[int, FaceRecord]]:
        for i in sorted(self.frames):
            for f in self.frames[i]:
                yield i, f


@dataclass
class Alignments:
    settings: dict
    sources: Dict[str, SourceRecord] = field(default_factory=dict)
    created_by: str = ""

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "created_by": self.created_by,
                "settings": self.settings,
                "sources": {k: s.to_json() for k, s in self.sources.items()}}

    def save(self, path: Path) -> None:
        data = json.dumps(self.to_json(), separators=(",", ":")).encode()
        atomic_write_bytes(Path(path), data)

    def source_for(self, path: str | Path) -> Optional[SourceRecord]:
        """Find a source by path as given, resolved path, or file name."""
        p = Path(path)
        for cand in (str(p), str(p.resolve()) if p.exists() else None):
            if cand and cand in self.sources:
                return self.sources[cand]
        hits = [s for s in self.sources.values() if Path(s.path).name == p.name]
        return hits[0] if len(hits) == 1 else None


def load(path: Path) -> Alignments:
    """Read an alignments file; clear InputError for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such alignments file: {path}")
    d = load_versioned_json(path, FORMAT, VERSION, "alignments file")
    S.validate(d, ALIGNMENTS_SPEC, path)
    try:
        sources = {k: SourceRecord.from_json(v) for k, v in d["sources"].items()}
        return Alignments(d["settings"], sources, d.get("created_by", ""))
    except (KeyError, TypeError, ValueError):
        raise InputError(f"alignments file is malformed: {path}") from None


def fingerprint(path: Path) -> Dict[str, int]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        return {"size": sum(p.stat().st_size for p in files), "mtime_ns": max((p.stat().st_mtime_ns for p in files), default=0),
                "count": len(files)}
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


# ---- streaming: the alignments file and faces.json without holding every record -------------------

SOURCE_FIELDS = tuple(k for k in SourceRecord.__dataclass_fields__ if k != "frames")
FACE_FIELDS = tuple(FaceRecord.__dataclass_fields__)
Frames = Iterable[Tuple[int, List[dict]]]      # (frame index, face dicts in FACE_FIELDS order), ascending


def _dumps(v) -> str:
    """The one JSON spelling of both files: compact, ASCII. Pieces joined with "," and ":" give the
    same bytes as json.dumps of the whole document (the encoder is compositional)."""
    return json.dumps(v, separators=(",", ":"))


_WS = re.compile(r"[ \t\n\r]*")


class _JsonStream:
    """Walks a JSON document read piece by piece through `read(n) -> str`: the caller enters objects
    key by key (`members`) and decodes the values it wants whole (`value`: json's own decoder on a
    buffer that only grows as long as one value needs). Errors are json.JSONDecodeError."""

    def __init__(self, read: Callable[[int], str], block: int = 1 << 20):
        self._read, self._block = read, block
        self._buf, self._pos, self._eof = "", 0, False
        self._decode = json.JSONDecoder().raw_decode

    def _more(self) -> None:
        # at least as much as is buffered: a value longer than a block costs linear, not quadratic, time
        s = self._read(max(self._block, len(self._buf) - self._pos))
        self._buf, self._pos, self._eof = self._buf[self._pos:] + s, 0, not s

    def _error(self, msg: str) -> json.JSONDecodeError:
        return json.JSONDecodeError(msg, self._buf, self._pos)

    def _peek(self) -> str:
        while True:
            self._pos = _WS.match(self._buf, self._pos).end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if self._eof:
                raise self._error("unexpected end of data")
            self._more()

    def value(self):
        """The value at the cursor, decoded whole."""
        self._peek()
        while True:
            try:
                v, end = self._decode(self._buf, self._pos)
                if end < len(self._buf) or self._eof:   # a number at the buffer's end may go on
                    self._pos = end
                    return v
            except json.JSONDecodeError:
                if self._eof:   # (a damaged file is read to its end before it is refused: rare, and bounded)
                    raise
            self._more()

    def members(self) -> Iterator[str]:
        """Keys of the object at the cursor; read each key's value (`value` or `members`) before the next."""
        if self._peek() != "{":
            raise self._error("expected an object")
        self._pos += 1
        if self._peek() == "}":
            self._pos += 1
            return
        while True:
            if self._peek() != '"':
                raise self._error("expected a key")
            key = self.value()
            if self._peek() != ":":
                raise self._error("expected ':'")
            self._pos += 1
            yield key
            c = self._peek()
            self._pos += 1
            if c == "}":
                return
            if c != ",":
                raise self._error("expected ',' or '}'")

    def items(self) -> Iterator[Tuple[str, object]]:
        """(key, value) of the object at the cursor, each value decoded whole."""
        for k in self.members():
            yield k, self.value()


@dataclass
class StoredSource:
    """A source in an AlignmentsStore: its fields in memory, its "frames" object as JSON in the spool."""

    header: dict            # every SourceRecord field but `frames`, in file order
    offset: int = 0         # the "frames" JSON is spool bytes [offset, offset + length)
    length: int = 0
    frames: int = 0         # processed frames recorded
    last: int = -1          # highest frame index recorded (-1: none)
    faces: int = 0          # faces recorded


class AlignmentsStore:
    """An alignments file that extract writes and re-reads as a stream, so its memory does not grow with
    the video: every source's frames wait as JSON in one anonymous temp file (the spool, beside the
    alignments file: it may be as large as the file, too large for a RAM-backed /tmp); memory holds only
    each source's fields and counts. `save` writes the same bytes as `Alignments.save` would."""

    def __init__(self, path: Path, settings: dict, created_by: str):
        self.path, self.settings, self.created_by = Path(path), settings, created_by
        self.sources: Dict[str, StoredSource] = {}
        self._spool: Optional[BinaryIO] = None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def __enter__(self) -> "AlignmentsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def put(self, sid: str, header: dict, frames: Frames) -> StoredSource:
        """Add or replace a source; `frames` is consumed as it is written (ascending frame index)."""
        src = StoredSource({k: header[k] for k in SOURCE_FIELDS})
        if not self._write_frames(src, frames):
            raise ValueError(f"frames of {sid} are not in ascending order")
        self.sources[sid] = src
        return src

    def frames(self, sid: str) -> Iterator[Tuple[int, List[dict]]]:
        src = self.sources[sid]
        return ((int(k), v) for k, v in _JsonStream(self._reader(src.offset, src.length)).items())

    def faces(self) -> Iterator[Tuple[str, int, dict]]:
        """(source path, frame index, face dict) of every face, source by source, frame by frame."""
        for sid, src in list(self.sources.items()):
            for i, fs in self.frames(sid):
                for f in fs:
                    yield src.header["path"], i, f

    def save(self) -> None:
        """Write the alignments file (atomically), copying each source's frames from the spool."""
        head = _dumps({"format": FORMAT, "version": VERSION, "created_by": self.created_by,
                       "settings": self.settings, "sources": {}})
        with _atomic_file(self.path) as out:
            out.write(head[:-2].encode())                   # up to '"sources":{'
            for n, (sid, src) in enumerate(self.sources.items()):
                out.write(f'{"," if n else ""}{_dumps(sid)}:{_dumps(src.header)[:-1]},"frames":'.encode())
                self._spool.seek(src.offset)
                _copy(self._spool, out, src.length)
                out.write(b"}")
            out.write(b"}}")

    @classmethod
    def read(cls, path: Path) -> "AlignmentsStore":
        """Stream an existing alignments file into a store; the same InputErrors as `load`."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such alignments file: {path}")
        store = cls(path, {}, "")
        try:
            store._read(path)
            return store
        except BaseException as e:
            store.close()
            if isinstance(e, (json.JSONDecodeError, UnicodeDecodeError)):
                raise InputError(f"not an alignments file (bad JSON): {path}") from None
            if isinstance(e, (KeyError, TypeError, ValueError)):
                raise InputError(f"alignments file is malformed: {path}") from None
            raise

    def _read(self, path: Path) -> None:
        top: dict = {}
        with open(path, encoding="utf-8") as f:
            js = _JsonStream(f.read)
            c = js._peek()
            if c != "{":        # a list, a string...: not "bad JSON" but the wrong kind of document
                kind = {"[": "a list", '"': "a string"}.get(c, "a number or literal")
                raise S.SchemaError(f"{path}: top level: expected an object (an alignments file), got {kind}")
            for key in js.members():
                if key != "sources":
                    top[key] = js.value()
                    continue
                _check_top(top, path, final=False)
                if js._peek() != "{":
                    S.validate(top | {"sources": js.value()}, S.Obj({"sources": S.Map()}), path)
                for sid in js.members():
                    self._read_source(sid, js, path)
        _check_top(top, path, final=True)
        S.validate(top, S.Obj({"settings": S.Obj()}, {"created_by": S.Opt(S.Str())}), path)
        self.settings, self.created_by = top["settings"], top.get("created_by", "")

    def _read_source(self, sid: str, js: _JsonStream, path: Path) -> None:
        src, head, ordered = StoredSource({}), {}, True
        self._write_frames(src, ())                 # a source without a "frames" key has none
        if js._peek() != "{":
            S.validate({"sources": {sid: js.value()}}, _SOURCES, path)
        for key in js.members():
            if key == "frames":
                ordered = self._write_frames(src, _checked_frames(js, sid, path))
            else:
                head[key] = js.value()
        S.validate({"sources": {sid: head}}, _SOURCE_HEADERS, path)
        src.header = {k: head[k] for k in SOURCE_FIELDS}
        self.sources[sid] = src
        if not ordered:     # a hand-edited file: sort it (in memory, as `load` would; veriswap writes them in order)
            self.put(sid, src.header, sorted(dict(self.frames(sid)).items()))

    def _write_frames(self, src: StoredSource, frames: Frames) -> bool:
        """Append a "frames" object to the spool for `src`; False if the indices were not ascending."""
        if self._spool is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._spool = tempfile.TemporaryFile(dir=self.path.parent)
        f, ordered = self._spool, True
        src.offset = f.seek(0, os.SEEK_END)
        src.frames, src.last, src.faces = 0, -1, 0
        f.write(b"{")
        for i, faces in frames:
            faces = [{k: d[k] for k in FACE_FIELDS} for d in faces]     # as FaceRecord would write them
            f.write(f'{"," if src.frames else ""}"{int(i)}":{_dumps(faces)}'.encode())
            ordered &= i > src.last
            src.frames, src.last, src.faces = src.frames + 1, max(src.last, i), src.faces + len(faces)
        f.write(b"}")
        src.length = f.tell() - src.offset
        return ordered

    def _reader(self, offset: int, length: int) -> Callable[[int], str]:
        """read(n) over spool bytes [offset, offset + length); seeks every time, so other spool use in
        between (an append, another reader) does no harm. The spool is ASCII (`_dumps`)."""
        pos, end = offset, offset + length

        def read(n: int) -> str:
            nonlocal pos
            self._spool.seek(pos)
            b = self._spool.read(min(n, end - pos))
            pos += len(b)
            return b.decode("ascii")
        return read


def _checked_frames(js: _JsonStream, sid: str, path: Path) -> Iterator[Tuple[int, List[dict]]]:
    """A source's "frames" object as it streams by, each frame checked (FRAMES_SPEC) before it is kept."""
    if js._peek() != "{":
        S.validate({"sources": {sid: {"frames": js.value()}}}, _SOURCE_FRAMES, path)
    for k, v in js.items():
        S.validate({"sources": {sid: {"frames": {k: v}}}}, _SOURCE_FRAMES, path)   # (the path names the field)
        yield int(k), v


def _check_top(top: dict, path: Path, final: bool) -> None:
    """`load`'s checks of format and version: once they are read (veriswap writes them before the
    sources, so a foreign file is refused before its sources are read) and at the end."""
    if (final or "format" in top) and top.get("format") != FORMAT:
        raise InputError(f"not a veriswap alignments file: {path}")
    if (final or "version" in top) and top.get("version") != VERSION:
        raise InputError(f"alignments version {top.get('version')} not supported (this veriswap reads {VERSION}): {path}")


def _copy(src: BinaryIO, dst: BinaryIO, n: int, block: int = 1 << 20) -> None:
    """Copy `n` bytes from src's position, a block at a time."""
    while n > 0:
        b = src.read(min(block, n))
        if not b:
            raise OSError("spool file ended early")
        dst.write(b)
        n -= len(b)


def stream_faces_json(path: Path, put: Callable[[str, object], None],
                      want: Callable[[str], bool] = lambda name: True) -> Optional[int]:
    """Read FACES_DIR/faces.json as a stream: `put(name, entry)` for each wanted entry. Returns its crop
    size (None: no file). Raises ValueError for bad JSON, bad UTF-8 or another version."""
    if not Path(path).is_file():
        return None
    size = None
    with open(path, encoding="utf-8") as f:
        js = _JsonStream(f.read)
        for key in js.members():
            if key == "faces":
                for name in js.members():
                    if want(name):
                        put(name, js.value())
                    else:
                        js.value()
            elif key == "size":
                size = js.value()
            elif key == "version":
                v = js.value()
                if v != FACES_JSON_VERSION:
                    raise ValueError(f"version {v} (this veriswap reads {FACES_JSON_VERSION})")
            else:
                js.value()
    return size if isinstance(size, int) else 0


def write_faces_index(path: Path, size: int, spool: BinaryIO, index: Dict[str, int]) -> None:
    """Write a faces.json atomically from entries waiting as JSON lines in `spool` (name -> offset), sorted
    by name: memory holds names and offsets only (~200 bytes a face, not ~10 KB of Python lists)."""
    head = _dumps({"version": FACES_JSON_VERSION, "size": size, "faces": {}})
    with _atomic_file(path) as out:
        out.write(head[:-2].encode())
        for n, name in enumerate(sorted(index)):
            spool.seek(index[name])
            out.write(f'{"," if n else ""}{_dumps(name)}:'.encode() + spool.readline()[:-1])
        out.write(b"}}")


def spool_entry(spool: BinaryIO, entry: object) -> int:
    """Append one entry to a spool as a JSON line; its offset."""
    at = spool.seek(0, os.SEEK_END)
    spool.write(_dumps(entry).encode() + b"\n")
    return at


def _old_faces_json(path: Path, size: int, spool: BinaryIO) -> Dict[str, int]:
    """Entries of an existing faces.json, spooled (file name -> offset); none when it is unreadable or
    made for another crop size."""
    at: Dict[str, int] = {}
    try:
        file_size = stream_faces_json(path, lambda name, entry: at.__setitem__(name, spool_entry(spool, entry)))
    except ValueError:          # damaged (bad JSON, not UTF-8, another version): start the index afresh
        return {}
    return at if file_size == size else {}


def write_faces_json(faces_dir: Path, faces: Iterable[Tuple[str, int, dict]], size: int) -> int:
    """Merge this run's faces ((source path, frame, face dict), as `AlignmentsStore.faces` gives them) into
    FACES_DIR/faces.json (the training set index). Returns its count.

    Entries are sorted by file name, so they wait as JSON lines in a temp file (`write_faces_index`)."""
    faces_dir = Path(faces_dir)
    path = faces_dir / "faces.json"
    with tempfile.TemporaryFile(dir=faces_dir) as spool:
        index = _old_faces_json(path, size, spool)
        for src_path, frame, f in faces:
            m = np.asarray(f["matrix"], np.float64)
            pts = np.asarray(f["landmarks"], np.float32) @ m[:, :2].T + m[:, 2]
            index[f["file"]] = spool_entry(spool, {"source": src_path, "frame": frame, "face": f["face"],
                                                   "landmarks": np.round(pts, 2).tolist(),
                                                   "embedding": f["embedding"], "blur": f["blur"]})
        # drop entries whose PNG is gone (e.g. user pruned bad crops by deleting files)
        names = [k for k in index if os.path.exists(faces_dir / k)]
        write_faces_index(path, size, spool, {k: index[k] for k in names})
    return len(names)

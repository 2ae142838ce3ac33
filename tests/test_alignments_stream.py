"""The streamed alignments file (`alignments.AlignmentsStore`) and faces.json: the same bytes as the
in-memory path, and a parent whose memory does not grow with the length of the video. No video
decoding and no dlib: the chunk files a worker would write are synthesised."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from swap import alignments as A
from swap.errors import InputError
from swap.extract.chunks import _Merge
from swap.extract.settings import ExtractSettings

SETTINGS = ExtractSettings()


def fake_faces(rng: np.random.Generator, key: str, frame: int, n: int) -> list:
    """`n` face dicts as a worker writes them: rounded like `extract._faces_of_frame`, realistic sizes."""
    out = []
    for face in range(n):
        lm = rng.uniform(100, 900, (68, 2))
        out.append(vars(A.FaceRecord(
            face=face, track=face, box=np.round(rng.uniform(0, 1000, 4), 2).tolist(), score=round(float(rng.uniform(0, 3)), 4),
            keyframe=bool(frame % 5 == 0), landmarks=np.round(lm, 2).tolist(),
            matrix=np.round(rng.normal(0, 1, (2, 3)), 6).tolist(), size=SETTINGS.size,
            embedding=np.round(rng.normal(0, 0.1, 128), 5).tolist(), blur=round(float(rng.uniform(5, 500)), 2),
            file=f"{key}_{frame:06d}_{face}.png")))
    return out


def write_parts(parts_dir: Path, fp: dict, key: str, n_frames: int, chunk: int, faces_in=lambda i: 1,
                seed: int = 0) -> None:
    """Chunk documents as `extract._write_part` writes them (the last chunk open-ended)."""
    rng = np.random.default_rng(seed)
    parts_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, n_frames, chunk):
        end = start + chunk if start + chunk < n_frames else None
        frames = {str(i): fake_faces(rng, key, i, faces_in(i)) for i in range(start, min(start + chunk, n_frames))}
        doc = {"settings": SETTINGS.output_key(), "fingerprint": fp, "start": start, "end": end,
               "last": start + len(frames) - 1, "frames": frames,
               "stats": {"faces_found": sum(len(v) for v in frames.values()), "faces_filtered": 0,
                         "frames_no_face": sum(not v for v in frames.values())}}
        (parts_dir / f"{start:09d}.json").write_text(json.dumps(doc, separators=(",", ":")))


def write_long_parts(parts_dir: Path, fp: dict, key: str, n_frames: int, chunk: int = 500) -> None:
    """Like `write_parts` with one face per frame, fast enough for 36,000 frames (~1 s, not ~6): the JSON
    of 50 random faces is reused round robin, each frame with its own file name. The reader parses every
    frame into objects of its own all the same, so memory is measured as with 36,000 different faces."""
    rng = np.random.default_rng(0)
    pool = []
    for _ in range(50):
        face = fake_faces(rng, key, 0, 1)[0]
        del face["file"]                # the last field: appended per frame below
        pool.append(json.dumps(face, separators=(",", ":"))[:-1])
    parts_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, n_frames, chunk):
        stop = min(start + chunk, n_frames)
        head = {"settings": SETTINGS.output_key(), "fingerprint": fp, "start": start,
                "end": stop if stop < n_frames else None, "last": stop - 1}
        frames = ",".join(f'"{i}":[{pool[i % 50]},"file":"{key}_{i:06d}_0.png"}}]' for i in range(start, stop))
        stats = {"faces_found": stop - start, "faces_filtered": 0, "frames_no_face": 0}
        (parts_dir / f"{start:09d}.json").write_text(
            json.dumps(head, separators=(",", ":"))[:-1] + ',"frames":{' + frames + '},"stats":' + json.dumps(stats) + "}")


def old_merge(rec: A.SourceRecord, parts_dir: Path) -> None:
    """What extract did before streaming: every record as a FaceRecord in memory."""
    for p in sorted(parts_dir.glob("*.json")):
        for k, faces in json.loads(p.read_bytes())["frames"].items():
            rec.frames[int(k)] = [A.FaceRecord.from_dict(f) for f in faces]


def old_faces_json(faces_dir: Path, aln: A.Alignments, size: int) -> bytes:
    """The faces.json that the in-memory `write_faces_json` wrote (its code before streaming)."""
    path = faces_dir / "faces.json"
    entries: dict = {}
    if path.is_file():
        old = json.loads(path.read_bytes())
        if old.get("size") == size:
            entries = old.get("faces", {})
    for src in aln.sources.values():
        for frame, f in src.faces():
            m = f.matrix_array()
            pts = f.landmarks_array() @ m[:, :2].T + m[:, 2]
            entries[f.file] = {"source": src.path, "frame": frame, "face": f.face,
                               "landmarks": np.round(pts, 2).tolist(), "embedding": f.embedding, "blur": f.blur}
    entries = {k: v for k, v in entries.items() if os.path.exists(faces_dir / k)}
    return json.dumps({"version": A.FACES_JSON_VERSION, "size": size, "faces": dict(sorted(entries.items()))},
                      separators=(",", ":")).encode()


@pytest.fixture
def two_sources(tmp_path):
    """A video source (empty frames, two-face frames, 7-frame chunks) and a one-image source, as parts."""
    fp = {"size": 123, "mtime_ns": 456}
    recs = [A.SourceRecord("/v/clip.mp4", "clip", 640, 480, 29.97, 40, False, fp),
            A.SourceRecord("/v/photo.png", "photo", 300, 200, 1.0, 1, True, {"size": 9, "mtime_ns": 1})]
    write_parts(tmp_path / ".parts" / "clip", fp, "clip", 40, 7, faces_in=lambda i: (i % 3 == 1) + (i % 5 != 0), seed=1)
    write_parts(tmp_path / ".parts" / "photo", recs[1].fingerprint, "photo", 1, 60, faces_in=lambda i: 3, seed=2)
    return tmp_path, recs


def test_streamed_save_is_byte_identical_to_the_in_memory_path(two_sources):
    d, recs = two_sources
    old = A.Alignments(SETTINGS.output_key(), created_by="veriswap test")
    for rec in recs:
        old_merge(rec, d / ".parts" / rec.key)
        rec.complete = True
        old.sources[rec.path] = rec
    old.save(d / "old.json")

    stats: dict = {}
    with A.AlignmentsStore(d / "new.json", SETTINGS.output_key(), "veriswap test") as store:
        for rec in recs:
            merge = _Merge(d / ".parts" / rec.key, SETTINGS, rec.fingerprint, stats)
            src = store.put(rec.path, rec.header(), merge)
            src.header["complete"] = True
            assert merge.chunks == (6 if rec.key == "clip" else 1)
            assert src.frames == len(rec.frames) and src.last == max(rec.frames)
            assert src.faces == sum(len(fs) for fs in rec.frames.values())
        store.save()
    assert (d / "new.json").read_bytes() == (d / "old.json").read_bytes()
    assert A.load(d / "new.json") == A.load(d / "old.json")
    assert stats["faces_found"] == sum(len(fs) for r in recs for fs in r.frames.values())

    # a re-run streams the file back in: saved again, still the same bytes
    with A.AlignmentsStore.read(d / "old.json") as again:
        assert again.settings == SETTINGS.output_key() and list(again.sources) == [r.path for r in recs]
        assert again.sources["/v/clip.mp4"].frames == 40
        again.path = d / "again.json"
        again.save()
    assert (d / "again.json").read_bytes() == (d / "old.json").read_bytes()

    # faces.json: merged with an older one (an entry kept, one overridden, one whose PNG was deleted)
    faces_dir = d / "faces"
    faces_dir.mkdir()
    names = [f.file for r in recs for _, f in r.faces()]
    for n in names[1:] + ["other_000001_0.png"]:        # names[0]'s PNG was deleted by the user
        (faces_dir / n).touch()
    prior = {"version": 1, "size": SETTINGS.size,
             "faces": {"other_000001_0.png": {"source": "/v/other.mp4", "frame": 1, "face": 0, "landmarks": [[1.5, 2.0]],
                                              "embedding": None, "blur": 3.25},
                       names[1]: {"stale": True}, "gone_000000_0.png": {"stale": True}}}
    (faces_dir / "faces.json").write_text(json.dumps(prior, indent=1))
    expected = old_faces_json(faces_dir, A.load(d / "old.json"), SETTINGS.size)
    with A.AlignmentsStore.read(d / "old.json") as store:
        assert A.write_faces_json(faces_dir, store.faces(), SETTINGS.size) == len(names)
    assert (faces_dir / "faces.json").read_bytes() == expected
    assert not [p for p in faces_dir.iterdir() if p.suffix != ".png" and p.name != "faces.json"]   # no temp files left


def test_reader_takes_what_load_takes_and_refuses_what_it_refuses(two_sources):
    d, recs = two_sources
    aln = A.Alignments(SETTINGS.output_key(), created_by="x")
    for rec in recs:
        old_merge(rec, d / ".parts" / rec.key)
        aln.sources[rec.path] = rec
    doc = aln.to_json()
    clip = doc["sources"]["/v/clip.mp4"]
    # hand-edited: pretty-printed, frames out of order, "frames" before the other fields, an extra face key
    clip["frames"] = dict(reversed(list(clip["frames"].items())))
    doc["sources"]["/v/clip.mp4"] = {"frames": clip.pop("frames"), **clip}
    doc["sources"]["/v/clip.mp4"]["frames"]["3"][0]["note"] = "extra"
    edited = d / "edited.json"
    edited.write_text(json.dumps(doc, indent=2))
    with A.AlignmentsStore.read(edited) as store:
        store.path = d / "normal.json"
        store.save()
    assert A.load(d / "normal.json") == A.load(edited)
    aln.save(d / "canonical.json")
    assert (d / "normal.json").read_bytes() == (d / "canonical.json").read_bytes()

    bad = d / "bad.json"
    for content, msg in ((b'{"format": "veriswap-alignments", "version": 1, "sources": {"x": {', "bad JSON"),
                         (b'{"format": "other", "sources": {"x": 1}}', "not a veriswap"),
                         (json.dumps({"format": A.FORMAT, "version": 99}).encode(), "version 99"),
                         (json.dumps({"format": A.FORMAT, "version": A.VERSION, "settings": {},
                                      "sources": {"x": {"path": 1}}}).encode(),
                          r"bad.json: field sources\.x\.path: expected a string, got 1"),
                         (json.dumps({"format": A.FORMAT, "version": A.VERSION, "settings": {},
                                      "sources": {"x": {**recs[1].header(), "frames": {"0": [{"face": 0}]}}}}).encode(),
                          r'bad.json: field sources\.x\.frames\["0"\]\[0\]\.track: missing')):
        bad.write_bytes(content)
        for reader in (A.load, A.AlignmentsStore.read):
            with pytest.raises(InputError, match=msg):
                reader(bad)


def test_json_stream_reads_values_split_across_blocks():
    doc = {"a": 12345678901234567890, "b": [1.5, "x" * 50, {"c": None}], "frames": {str(i): [i * 0.25] * i for i in range(30)},
           "t": True}
    text = json.dumps(doc, indent=1)
    for block in (1, 3, 7, 64):
        pos = 0

        def read(n):
            nonlocal pos
            pos += n
            return text[pos - n:pos]
        js = A._JsonStream(read, block=block)
        got = {}
        for k in js.members():
            got[k] = dict(js.items()) if k == "frames" else js.value()
        assert got == doc


MEASURE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from swap import alignments as A
    from swap.extract import extract
    video, out = Path(sys.argv[1]), Path(sys.argv[2])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s = extract([video], out, jobs=2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mb": (peak - base) / 1024, "resumed": s.frames_resumed, "read": s.frames_read,
                      "faces": s.faces_found}), flush=True)
    src = A.load(out / "alignments.json").source_for(video)     # the in-memory reader, after the measurement
    faces = (out / "faces.json").read_bytes().count(b'.png":{"source":')     # parsing 84 MB takes 5 s
    print(json.dumps({"complete": src.complete, "frames": sorted(src.frames) == list(range(36000)),
                      "one_face": all(len(v) == 1 for v in src.frames.values()), "faces_json": faces}))
""")


def test_parent_memory_is_flat_on_a_20_minute_video(tmp_path):
    """36,000 frames (20 min at 30 fps), one face each, in 72 finished chunks: the parent only merges,
    saves and writes faces.json. Before streaming its peak grew by ~1.2 GB here (1194 MB measured); now
    by ~30 MB (27 MB measured), most of it one chunk document parsed into Python objects."""
    av = pytest.importorskip("av")
    n = 36000
    video = tmp_path / "long.mkv"       # 16x16 and all alike: encodes in a blink, probes as 36,000 frames
    with av.open(str(video), "w") as c:
        st = c.add_stream("mpeg4", rate=30)
        st.width, st.height, st.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for _ in range(n):
            c.mux(st.encode(frame))
        c.mux(st.encode())
    out = tmp_path / "faces"
    write_long_parts(out / ".parts" / "long", A.fingerprint(video), "long", n)
    for i in range(n):
        (out / f"long_{i:06d}_0.png").touch()      # faces.json keeps only faces whose crop exists
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    r = subprocess.run([sys.executable, str(script), str(video), str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    mem, check = (json.loads(line) for line in r.stdout.strip().splitlines())
    assert mem["resumed"] == n and mem["read"] == 0 and mem["faces"] == n
    assert check == {"complete": True, "frames": True, "one_face": True, "faces_json": n}
    assert not (out / ".parts").exists() and not list(out.glob(".*.tmp"))
    assert mem["growth_mb"] < 100, mem

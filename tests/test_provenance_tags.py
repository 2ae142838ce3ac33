"""Footage tags: every tamper case from the issue on real H.264 MP4s, located to the exact frame."""
from __future__ import annotations

import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_provenance import alter, drop, insert, read_video_packets, reencode, remux_edit, swap  # noqa: E402

from provenance import keys  # noqa: E402
from provenance.errors import KeyFileError, ProvenanceError, TagFormatError  # noqa: E402
from provenance.tags import check_video, load_tag_key, tag_video  # noqa: E402
from swap.samples import make_face_video  # noqa: E402

N = 20


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("tags")
    video = make_face_video(d / "cam.mp4", frames=N, size=(320, 240))
    ident = keys.generate_identity(d / "id")
    hkey = load_tag_key(ident.key_dir / keys.TAG_KEY)
    sk = load_tag_key(ident.key_dir / keys.SIGNER_KEY)
    pk = load_tag_key(ident.key_dir / keys.SIGNER_CERT)
    tags = {
        "hmac": (tag_video(video, hkey, mode="hmac", out=d / "cam.hmac.tags"), hkey, hkey),
        "ed25519": (tag_video(video, sk, mode="ed25519", out=d / "cam.ed.tags", group=8), sk, pk),
    }
    return {"dir": d, "video": video, "tags": tags, "ident": ident}


MODES = ["hmac", "ed25519"]


@pytest.mark.parametrize("mode", MODES)
def test_untouched_video_and_plain_remux_are_authentic(env, mode):
    tags, _, vkey = env["tags"][mode]
    r = check_video(env["video"], tags, vkey)
    assert r.ok and r.exit_code == 0
    assert r.status == "." * N and r.first_bad is None and r.problems == []
    assert r.frames_video == r.frames_tagged == N
    assert r.key_matches and r.tags_authentic and r.stream_matches
    # the library also takes the key file's path
    keyfile = env["ident"].key_dir / (keys.TAG_KEY if mode == "hmac" else keys.SIGNER_CERT)
    assert check_video(env["video"], tags, keyfile).ok
    # a remux that keeps the coded frames (and a faststart layout) raises no false alarm
    copy = remux_edit(env["video"], env["dir"] / f"remux_{mode}.mp4", faststart=True)
    assert copy.read_bytes() != env["video"].read_bytes()
    r2 = check_video(copy, tags, vkey)
    assert r2.ok and r2.status == "." * N, r2.problems


def test_tag_file_records_algorithm_stream_and_count(env):
    tags, _, _ = env["tags"]["ed25519"]
    lines = [json.loads(x) for x in tags.read_text().splitlines()]
    head, end = lines[0], lines[-1]
    assert head["format"] == "veriswap-tags" and head["version"] == 1
    assert head["mode"] == "ed25519" and head["hash"] == "sha256" and head["group"] == 8
    assert head["stream"]["codec"] == "h264" and (head["stream"]["width"], head["stream"]["height"]) == (320, 240)
    assert end["end"] is True and end["frames"] == N
    assert sum(1 for x in lines if "g" in x) == 3  # 8 + 8 + 4 frames
    # one SHA-256 per coded frame, equal to the hash of the packet bytes
    import hashlib
    pkts = read_video_packets(env["video"])
    assert [x["h"] for x in lines if "h" in x] == [hashlib.sha256(p.data).hexdigest() for p in pkts]


def test_tag_files_follow_the_documented_format_byte_for_byte(env):
    # an independent re-derivation of every chain value, frame MAC, group signature and end line from
    # the spec in docs/provenance.md (hashlib/hmac/cryptography only), so the hand-inlined writer and
    # reader hot loops cannot drift from the format
    import hashlib
    import hmac
    import struct

    pkts = read_video_packets(env["video"])
    for mode in MODES:
        tags, skey, vkey = env["tags"][mode]
        raw = tags.read_bytes().split(b"\n")
        assert raw[-1] == b""
        head_line, lines = raw[0] + b"\n", [json.loads(x) for x in raw[1:-1]]
        H = hashlib.sha256(b"veriswap-tags/1 header" + head_line).digest()
        c = H
        frames = [x for x in lines if "h" in x]
        assert len(frames) == len(pkts) == N
        for i, (x, p) in enumerate(zip(frames, pkts)):
            assert x["i"] == i and x["pts"] == p.pts and x["k"] == int(p.key)
            h = hashlib.sha256(p.data).digest()
            assert x["h"] == h.hex()
            c = hashlib.sha256(c + struct.pack(">QqB", i, p.pts, int(p.key)) + h).digest()
            assert x["c"] == c.hex()
            if mode == "hmac":
                assert x["t"] == hmac.new(skey, b"veriswap-tags/1 frame" + H + c, "sha256").hexdigest()
            else:
                assert "t" not in x
        end = lines[-1]
        msg = b"veriswap-tags/1 end" + H + struct.pack(">Q", N) + c
        if mode == "hmac":
            assert end["t"] == hmac.new(skey, msg, "sha256").hexdigest()
        else:
            vkey.verify(bytes.fromhex(end["s"]), msg)  # raises if wrong
            chain = {x["i"]: bytes.fromhex(x["c"]) for x in frames}
            for g in (x for x in lines if "g" in x):
                vkey.verify(bytes.fromhex(g["s"]), b"veriswap-tags/1 group" + H + struct.pack(">Q", g["g"])
                            + chain[g["n"] - 1])
        # and the writer's own compact JSON: keys sorted, no spaces
        for line in raw[1:-1]:
            assert line == json.dumps(json.loads(line), separators=(",", ":"), sort_keys=True).encode()


@pytest.mark.parametrize("klen", [16, 32, 63, 64, 65, 200])
def test_frame_mac_is_hmac_sha256(klen):
    import hashlib
    import hmac

    from provenance.tagfile import FrameMac

    key = hashlib.sha512(bytes([klen])).digest() * 4
    key = key[:klen]
    fm = FrameMac(key, b"prefix")
    for msg in (b"", b"x", bytes(32), bytes(range(256)) * 3):
        assert fm.digest(msg) == hmac.new(key, b"prefix" + msg, "sha256").digest()


CASES = {
    # name: (edit, expected status); N=20 frames, tampering at coded frame 5
    "altered": (alter(5), "....." + "N" + "." * 14),
    "dropped": (drop(5), "....." + "M" + "." * 14),
    "inserted": (insert(5), "......" + "X" + "." * 14),
    "swapped": (swap(5), "....." + "XX" + "." * 13),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(CASES))
def test_each_tamper_case_is_located_to_the_frame(env, mode, case):
    edit, expected = CASES[case]
    tags, _, vkey = env["tags"][mode]
    bad = remux_edit(env["video"], env["dir"] / f"{case}_{mode}.mp4", edit)
    r = check_video(bad, tags, vkey)
    assert not r.ok and r.exit_code == 1
    assert r.status == expected
    fb = r.first_bad
    assert fb.position == expected.index(fb.status) and fb.status == expected.strip(".")[0]
    assert r.tags_authentic and r.key_matches  # the tags are fine: the video is not


def test_first_bad_frame_has_index_and_timestamp(env):
    tags, _, key = env["tags"]["hmac"]
    bad = remux_edit(env["video"], env["dir"] / "alter12.mp4", alter(12))
    r = check_video(bad, tags, key)
    pkt = read_video_packets(env["video"])[12]
    assert (r.first_bad.video_index, r.first_bad.tag_index) == (12, 12)
    assert r.first_bad.time == pytest.approx(float(pkt.pts * Fraction(1, 12800)))
    # cut frames shift the timeline of everything after them: reported, not silently accepted
    r2 = check_video(remux_edit(env["video"], env["dir"] / "drop3.mp4", drop(3)), tags, key)
    assert any("presentation times changed" in p for p in r2.problems)


@pytest.mark.parametrize("mode", MODES)
def test_reencode_fails_every_frame(env, mode):
    tags, _, vkey = env["tags"][mode]
    re = reencode(env["video"], env["dir"] / f"reencoded_{mode}.mp4")
    r = check_video(re, tags, vkey)
    assert not r.ok and not r.stream_matches
    assert r.counts.get(".", 0) == 0 and r.status.startswith("N")


def test_truncated_files(env):
    tags, _, key = env["tags"]["hmac"]
    data = env["video"].read_bytes()
    cut = env["dir"] / "cut.mp4"      # index (moov) at the end, as cameras write: nothing demuxes
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(ProvenanceError, match="not a readable video") as e:   # as `tag` (issue 16)
        check_video(cut, tags, key)
    assert e.value.exit_code == 2
    fast = remux_edit(env["video"], env["dir"] / "fast.mp4", faststart=True)
    fdata = fast.read_bytes()
    cut2 = env["dir"] / "cut_fast.mp4"  # index first: the frames before the cut survive
    cut2.write_bytes(fdata[: len(fdata) * 6 // 10])
    r2 = check_video(cut2, tags, key)
    assert r2.exit_code == 1 and r2.status.endswith("M") and r2.status.startswith(".")
    assert r2.status.count(".") + r2.status.count("N") + r2.status.count("M") == N
    assert r2.first_bad.status in "NM"


def test_wrong_keys(env, tmp_path):
    tags, _, _ = env["tags"]["hmac"]
    r = check_video(env["video"], tags, os.urandom(32))
    assert r.status == "N" * N and not r.key_matches and not r.ok
    assert "wrong key" in r.problems[0]
    etags, _, _ = env["tags"]["ed25519"]
    other = keys.generate_identity(tmp_path / "other")
    r2 = check_video(env["video"], etags, load_tag_key(other.key_dir / keys.SIGNER_CERT))
    assert r2.status == "N" * N and not r2.key_matches and r2.exit_code == 1
    # the wrong kind of key is unusable input (exit 2), not a verdict
    with pytest.raises(TagFormatError) as e:
        check_video(env["video"], etags, os.urandom(32))
    assert e.value.exit_code == 2


def _edit_line(path: Path, out: Path, lineno: int, field: str) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    obj = json.loads(lines[lineno])
    v = obj[field]
    obj[field] = ("0" if v[0] != "0" else "1") + v[1:]
    lines[lineno] = json.dumps(obj, separators=(",", ":")) + "\n"
    out.write_text("".join(lines))
    return out


def test_tampered_tag_files(env, tmp_path):
    tags, _, key = env["tags"]["hmac"]
    # forge frame 7's hash: only frame 7 loses authentication
    r = check_video(env["video"], _edit_line(tags, tmp_path / "h.tags", 1 + 7, "h"), key)
    assert r.status == "." * 7 + "N" + "." * 12 and not r.tags_authentic and r.exit_code == 1
    # cut the tag file (end line gone)
    lines = tags.read_text().splitlines(keepends=True)
    (tmp_path / "cut.tags").write_text("".join(lines[:-1]))
    r2 = check_video(env["video"], tmp_path / "cut.tags", key)
    assert r2.status == "." * N and not r2.tags_authentic and r2.exit_code == 1
    assert any("no end line" in p for p in r2.problems)
    # drop one entry line: the chain breaks from there on
    (tmp_path / "gap.tags").write_text("".join(lines[:5] + lines[6:]))
    r3 = check_video(env["video"], tmp_path / "gap.tags", key)
    assert r3.exit_code == 1 and r3.status[:4] == "...." and "N" in r3.status
    # Ed25519: a forged entry fails its group's signature chain (frames 8..15 are group 1)
    etags, _, pk = env["tags"]["ed25519"]
    lines_e = etags.read_text().splitlines()
    entry_line = next(i for i, x in enumerate(lines_e) if json.loads(x).get("i") == 11)
    r4 = check_video(env["video"], _edit_line(etags, tmp_path / "e.tags", entry_line, "h"), pk)
    assert r4.status == "." * 8 + "N" * 4 + "." * 8 and r4.exit_code == 1
    # a forged group signature fails the whole group
    gline = next(i for i, x in enumerate(lines_e) if json.loads(x).get("g") == 0)
    r5 = check_video(env["video"], _edit_line(etags, tmp_path / "g.tags", gline, "s"), pk)
    assert r5.status == "N" * 8 + "." * 12


@pytest.mark.parametrize("content,msg", [
    (b"", "empty"),
    (b"\x00\xff garbage", "cut off"),
    (b"[1,2]\n", "JSON object"),
    (b'{"format":"other"}\n', "not a veriswap tag file"),
    (b'{"format":"veriswap-tags","version":9}\n', "version"),
    (b"x" * 10000 + b"\n", "longer than"),
])
def test_malformed_tag_files_are_exit_2(env, tmp_path, content, msg):
    p = tmp_path / "bad.tags"
    p.write_bytes(content)
    with pytest.raises(TagFormatError, match=msg) as e:
        check_video(env["video"], p, env["tags"]["hmac"][2])
    assert e.value.exit_code == 2


def test_bad_inputs_are_clean_errors(env, tmp_path):
    key = env["tags"]["hmac"][2]
    with pytest.raises(ProvenanceError):
        tag_video(tmp_path / "missing.mp4", key)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"junk" * 100)
    with pytest.raises(ProvenanceError, match="not a readable video"):
        tag_video(junk, key)
    short = tmp_path / "short.key"
    short.write_text("abcd\n")
    with pytest.raises(KeyFileError, match="at least 16 bytes"):
        load_tag_key(short)
    with pytest.raises(KeyFileError):
        load_tag_key(env["ident"].key_dir)


@pytest.mark.parametrize("mode", MODES)
def test_reformatted_json_means_the_same(env, mode, tmp_path):
    # key order and whitespace are not part of what is authenticated (the binary encoding is), so a
    # pretty-printed copy checks the same; a changed value in it still fails
    tags, _, vkey = env["tags"][mode]
    lines = tags.read_text().splitlines()
    relaxed = [lines[0]] + [json.dumps(dict(reversed(list(json.loads(x).items())))) for x in lines[1:]]
    (tmp_path / "relaxed.tags").write_text("\n".join(relaxed) + "\n")
    r = check_video(env["video"], tmp_path / "relaxed.tags", vkey)
    assert r.ok and r.status == "." * N
    obj = json.loads(relaxed[3])
    obj["pts"] = (obj["pts"] or 0) + 1
    relaxed[3] = json.dumps(obj)
    (tmp_path / "relaxed_bad.tags").write_text("\n".join(relaxed) + "\n")
    r2 = check_video(env["video"], tmp_path / "relaxed_bad.tags", vkey)
    assert not r2.ok and r2.status[0] in ".N" and "N" in r2.status


def test_alignment_memory_is_bounded_by_the_window_not_the_length():
    # streamed synthetic footage: peak Python memory for 100k frames stays about that for 10k
    import hashlib
    import tracemalloc

    from provenance.tagmatch import align
    from provenance.frames import FrameHash
    from provenance.tagfile import TagEntry

    def run(n: int) -> int:
        def digest(i):
            return hashlib.sha256(i.to_bytes(8, "big")).digest()
        video = (FrameHash(i, i * 512, Fraction(1, 12800), i % 25 == 0, digest(i), 1000) for i in range(n) if i != 7)
        tags = (TagEntry(i, i * 512, i % 25 == 0, digest(i), True) for i in range(n))
        tracemalloc.start()
        count = sum(1 for ev in align(video, tags) if ev.status != ".")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert count == 1  # the one dropped frame
        return peak

    small, large = run(10_000), run(100_000)
    assert large < small * 1.5 + 200_000, (small, large)


def test_progress_is_reported_in_file_order(env, tmp_path):
    seen = []
    tag_video(env["video"], env["tags"]["hmac"][1], out=tmp_path / "p.tags", progress=seen.append)
    assert seen and seen == sorted(seen) and seen[-1] <= env["video"].stat().st_size
    assert check_video(env["video"], tmp_path / "p.tags", env["tags"]["hmac"][1], progress=seen.append).ok

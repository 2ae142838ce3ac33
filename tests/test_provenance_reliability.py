"""Issue 16, provenance side: each case the prober found, with the exact input that failed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provenance import keys
from provenance.c2pa_sign import sign_file
from provenance.c2pa_store import bmff_boxes
from provenance.c2pa_verify import verify_file
from provenance.errors import KeyFileError, ProvenanceError
from provenance.remux import remux_edit
from provenance.tags import check_video, load_tag_key, tag_video
from swap.samples import make_face_video

CLI = "veriswap.cli" if (Path(__file__).parents[1] / "veriswap" / "cli.py").exists() else "swap.cli"


def run(*args, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VERISWAP_DEBUG"} | kw.pop("env", {})
    return subprocess.run([sys.executable, "-m", CLI, "provenance", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env, **kw)


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    d = tmp_path_factory.mktemp("rel")
    ident = keys.generate_identity(d / "id", name="reliability")
    src = make_face_video(d / "src.mp4", frames=12, size=(256, 192))
    out = sign_file(src, d / "signed.mp4", ident).out
    return {"dir": d, "src": src, "out": out, "anchor": ident.key_dir / keys.ROOT_CERT, "ident": ident}


# ---------------------------------------------------------------- 1. unsigned bytes of a signed MP4

def test_issue_repro_ftyp_brand_and_bytes_in_the_signature_pad_are_reported(signed):
    """`d[8:12]=b'qt  '; d[4000:4032]=b'ANY BYTES HERE, NOT SIGNED......'` was TRUSTED with nothing said."""
    d = bytearray(signed["out"].read_bytes())
    assert verify_file(signed["out"], [signed["anchor"]]).warnings == []  # untouched: no warning at all
    d[8:12] = b"qt  "
    d[4000:4032] = b"ANY BYTES HERE, NOT SIGNED......"
    t = signed["dir"] / "t.mp4"
    t.write_bytes(bytes(d))
    r = verify_file(t, [signed["anchor"]])
    if r.state == "trusted":  # still a valid signature over what it covers: then both changes are named
        assert any("ftyp box changed since signing" in w and "'isom' -> 'qt  '" in w for w in r.warnings), r.warnings
        assert any("padding" in w or "not covered" in w for w in r.warnings if "ftyp" not in w), r.warnings
    assert r.state in ("trusted", "invalid")
    res = run("verify", t, "--trust-anchor", signed["anchor"])
    assert "  warning     the ftyp box changed since signing" in res.stdout, res.stdout
    res = run("verify", t, "--trust-anchor", signed["anchor"], "--json")
    assert json.loads(res.stdout)["warnings"] == r.warnings and json.loads(res.stdout)["schema_version"] == 2


def test_no_single_byte_change_is_trusted_silently(signed):
    """300 evenly spread byte changes (the prober's sweep): each one is either not trusted or trusted with a
    warning that says which unsigned bytes changed."""
    data = signed["out"].read_bytes()
    m = signed["dir"] / "m.mp4"
    boxes = list(bmff_boxes(data))
    silent, outcomes = [], {"invalid/other": 0, "trusted+warning": 0}
    for k in range(300):
        i = k * len(data) // 300 + 7
        t = bytearray(data)
        t[i] ^= 0x5A
        m.write_bytes(bytes(t))
        try:
            r = verify_file(m, [signed["anchor"]])
        except ProvenanceError:
            outcomes["invalid/other"] += 1  # no longer a readable container: exit 2
            continue
        if r.state == "trusted":
            if not r.warnings:
                silent.append((i, next(kind for off, size, _, kind in boxes if off <= i < off + size)))
            else:
                outcomes["trusted+warning"] += 1
        else:
            outcomes["invalid/other"] += 1
    assert silent == [], silent
    assert outcomes["trusted+warning"] > 0   # the sweep did hit the unsigned regions


def test_signing_records_the_ftyp_it_leaves_unsigned(signed):
    r = verify_file(signed["out"], [signed["anchor"]])
    assert r.state == "trusted" and r.warnings == []
    # nonzero bytes in a top-level free box (excluded from the BMFF hash) are reported too
    data = bytearray(signed["out"].read_bytes())
    free = [(off, size, hdr) for off, size, hdr, kind in bmff_boxes(bytes(data)) if kind == b"free"]
    if free and free[0][1] > free[0][2]:
        off, size, hdr = free[0]
        data[off + hdr] = 0x41
        p = signed["dir"] / "free.mp4"
        p.write_bytes(bytes(data))
        assert any("free/skip" in w for w in verify_file(p, [signed["anchor"]]).warnings)


# ---------------------------------------------------------------- 2. sign refuses what does not demux

@pytest.mark.parametrize("faststart", [False, True], ids=["index-last", "index-first"])
def test_sign_refuses_the_first_30_percent_of_an_mp4(signed, faststart):
    src = signed["src"] if not faststart else remux_edit(signed["src"], signed["dir"] / "fast.mp4", faststart=True)
    data = src.read_bytes()
    cut = signed["dir"] / f"cut30_{faststart}.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(ProvenanceError, match="cannot sign") as e:
        sign_file(cut, signed["dir"] / f"o_{faststart}.mp4", signed["ident"])
    assert e.value.exit_code == 2 and not (signed["dir"] / f"o_{faststart}.mp4").exists()
    res = run("sign", cut, "-k", signed["ident"].key_dir, "-o", signed["dir"] / "o2.mp4")
    assert res.returncode == 2 and res.stderr.startswith("error: cannot sign") and len(res.stderr.splitlines()) == 1
    assert "Traceback" not in res.stderr
    # `tag` refuses the index-last cut as well: the two agree
    if not faststart:
        assert run("tag", cut, "--key", signed["dir"] / "id" / "tag.key").returncode == 2


def test_sign_refuses_a_truncated_jpeg(signed, tmp_path):
    from swap.samples import save_photo

    photo = save_photo("grace_hopper", tmp_path / "p.jpg")
    data = photo.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ProvenanceError, match="not a readable image"):
        sign_file(tmp_path / "cut.jpg", tmp_path / "o.jpg", signed["ident"])
    assert verify_file(sign_file(photo, tmp_path / "ok.jpg", signed["ident"]).out, [signed["anchor"]]).state == "trusted"


# ---------------------------------------------------------------- 4. exit codes

def test_keygen_prompt_passphrase_without_a_terminal_is_a_clean_exit_2(tmp_path):
    res = run("keygen", "-o", tmp_path / "k", "--prompt-passphrase", stdin=subprocess.DEVNULL)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error:") and "--passphrase-env" in res.stderr
    assert "GetPassWarning" not in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "k").exists()


def test_check_on_an_unreadable_video_is_exit_2_like_tag(signed, tmp_path):
    key = tmp_path / "k.key"
    key.write_text(os.urandom(32).hex())
    tags = tag_video(signed["src"], key, out=tmp_path / "v.tags")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 50)
    cut = tmp_path / "cut.mp4"  # index at the end, as cameras write: nothing demuxes
    data = signed["src"].read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    for bad in (garbage, cut):
        t = run("tag", bad, "--key", key, "-o", tmp_path / "x.tags")
        c = run("check", bad, "--tags", tags, "--key", key)
        assert t.returncode == c.returncode == 2, (bad, t.stderr, c.stdout, c.stderr)
        assert c.stderr.startswith("error: not a readable video") and "Traceback" not in c.stderr
        with pytest.raises(ProvenanceError):
            check_video(bad, tags, key)


# ---------------------------------------------------------------- 5. tag.key encrypted with the passphrase

def test_keygen_passphrase_encrypts_tag_key_too(tmp_path):
    env = {"VS_PW": "correct horse"}
    res = run("keygen", "-o", tmp_path / "id", "--passphrase-env", "VS_PW", env=env)
    assert res.returncode == 0, res.stderr
    assert "root.key, signer.key, tag.key" in res.stdout and "all three encrypted" in res.stdout
    raw = (tmp_path / "id" / keys.TAG_KEY).read_bytes()
    assert raw.startswith(b"-----BEGIN VERISWAP ENCRYPTED TAG KEY-----") and keys.key_is_encrypted(tmp_path / "id" / "tag.key")
    for f in keys.ENCRYPTED_FILES:
        assert keys.key_is_encrypted(tmp_path / "id" / f), f
    secret = load_tag_key(tmp_path / "id" / "tag.key", b"correct horse")
    assert isinstance(secret, bytes) and len(secret) == 32 and secret.hex().encode() not in raw
    with pytest.raises(KeyFileError, match="encrypted; give its passphrase"):
        load_tag_key(tmp_path / "id" / "tag.key")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_tag_key(tmp_path / "id" / "tag.key", b"wrong")
    # unencrypted keygen keeps the plain hex file, and says so
    res = run("keygen", "-o", tmp_path / "plain")
    assert "NOT encrypted" in res.stdout
    assert len(load_tag_key(tmp_path / "plain" / "tag.key")) == 32

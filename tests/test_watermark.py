"""Invisible watermark as C2PA soft binding, on real faces: embed -> sign -> strip metadata -> re-encode
-> detect -> recover the manifest from the store; the false-positive side on real unwatermarked clips;
bad input (too small to carry the payload, corrupt store, garbage) as clean errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from provenance import keys
from provenance.c2pa_sign import SwapFacts
from provenance.store import ManifestStore, StoreError
from provenance.watermark import attacks as A
from provenance.watermark import core, ecc
from provenance.watermark.binding import new_binding, sign_watermarked
from provenance.watermark.media import detect_file
from provenance.watermark.resolve import resolve
from swap.samples import load_photo, make_face_video

CLI = "veriswap.cli" if (Path(__file__).parents[1] / "veriswap" / "cli.py").exists() else "swap.cli"


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERISWAP_HOME": str(home)}
    env.pop("VERISWAP_DEBUG", None)
    return subprocess.run([sys.executable, "-m", CLI, "provenance", *args], capture_output=True, text=True,
                          env=env, timeout=180)


def watermark_video(src: Path, dst: Path, pid: int) -> Path:
    """Re-encode src (CRF 18, as convert writes) with every frame watermarked."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = vin.width, vin.height, "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        emb = core.Embedder(pid, (vin.width, vin.height))
        for i, f in enumerate(inp.decode(vin)):
            vf = av.VideoFrame.from_ndarray(emb(f.to_ndarray(format="rgb24")), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return dst


def test_ecc_roundtrip_and_crc():
    assert ecc.crc16(b"123456789") == 0x29B1
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, core.PAYLOAD_BITS)
    coded = ecc.conv_encode(bits)
    assert coded.size == core.N_CODED
    soft = (2.0 * coded - 1) + rng.normal(0, 0.6, coded.size)
    out, _ = ecc.viterbi_decode(soft, core.PAYLOAD_BITS)
    assert (out == bits).all()


def test_payload_id_depends_on_label_and_key():
    a = core.payload_id("urn:c2pa:1", b"k1")
    assert a == core.payload_id("urn:c2pa:1", b"k1")
    assert a != core.payload_id("urn:c2pa:2", b"k1") and a != core.payload_id("urn:c2pa:1", b"k2")
    assert 0 <= a < 2 ** 32


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A watermarked, signed 640x480 clip of a real face, its manifest in a fresh store."""
    d = tmp_path_factory.mktemp("wm")
    home = d / "home"
    os.environ["VERISWAP_HOME"] = str(home)
    try:
        ident = keys.default_identity()
    finally:
        os.environ.pop("VERISWAP_HOME")
    src = make_face_video(d / "source.mp4", "astronaut", frames=75)
    b = new_binding(ident)
    unsigned = watermark_video(src, d / "unsigned.mp4", b.pid)
    facts = SwapFacts(model_hash="sha256:" + "ab" * 32, direction="a2b", identities={"a": "x", "b": "y"},
                      frames_total=75, frames_swapped=75, faces_swapped=75, source=str(src), model_name="original")
    store = ManifestStore(home / "manifests")
    res = sign_watermarked(unsigned, d / "swap.mp4", ident, b, facts=facts, duration_ms=3000, store=store)
    return {"dir": d, "home": home, "ident": ident, "binding": b, "out": res.out, "store": store, "src": src}


def test_embed_strip_reencode_detect_resolve(signed):
    d, b = signed["dir"], signed["binding"]
    stripped = A.strip_and_reencode(signed["out"], d / "stripped.mp4", crf=28)
    res = resolve(stripped, signed["store"], [signed["ident"].key_dir / keys.ROOT_CERT])
    assert res.detection.found and res.detection.payload_id == b.payload
    assert res.detection.bit_confidence > 0.9 and res.detection.frames_found > 30
    best = res.best
    assert best is not None and best.binding_ok and best.state == "intact-trusted"
    assert best.content_changed            # re-encoded: the hard binding no longer holds, as expected
    assert best.report["manifest_label"] == b.label
    assert best.report["swap"]["model_hash"].startswith("sha256:abab")
    assert res.exit_code(anchors=True) == 0


def test_cli_recovers_manifest_from_stripped_copy(signed):
    d = signed["dir"]
    stripped = A.remux_strip(signed["out"], d / "remuxed.mp4")
    r = cli("watermark", str(stripped), "--trust-anchor", str(signed["ident"].key_dir / keys.ROOT_CERT),
            home=signed["home"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "veriswap swap, manifest recovered from the store: signed by veriswap local signer at" in r.stdout
    assert "source source.mp4" in r.stdout and "signer TRUSTED" in r.stdout
    r = cli("watermark", str(stripped), "--json", home=signed["home"])
    rep = json.loads(r.stdout)
    assert r.returncode == 0 and rep["watermark"]["payload_id"] == signed["binding"].payload
    # an empty store: the watermark is found but nothing to recover -> exit 1
    r = cli("watermark", str(stripped), "--store", str(d / "empty_store"), home=signed["home"])
    assert r.returncode == 1 and "no manifest for it" in r.stdout


def test_store_export_import(signed, tmp_path):
    n = signed["store"].export(tmp_path / "shared")
    assert n == 1
    other = ManifestStore(tmp_path / "mine")
    assert other.import_from(tmp_path / "shared") == 1
    recs = other.lookup(signed["binding"].payload)
    assert len(recs) == 1 and recs[0].manifest_label == signed["binding"].label
    assert other.manifest(recs[0]) == signed["store"].manifest(signed["store"].lookup(signed["binding"].payload)[0])


@pytest.mark.parametrize("photo,attack", [("astronaut", "crf28"), ("grace_hopper", "none"),
                                          ("grace_hopper", "flip"), ("astronaut", "down")])
def test_no_false_positive_on_real_unwatermarked_clips(tmp_path, photo, attack):
    src = make_face_video(tmp_path / "clean.mp4", photo, frames=50, audio=False)
    f = {"none": lambda s, t: s, "crf28": lambda s, t: A.transcode(s, t, 28),
         "flip": lambda s, t: A.transcode(s, t, 23, A.hflip), "down": lambda s, t: A.transcode(s, t, 23, A.scale(0.5))}
    r = detect_file(f[attack](src, tmp_path / "a.mp4"))
    assert not r.found and r.payload_id is None and r.frames_found == 0


def test_no_false_positive_on_single_real_frames():
    """40 single frames (the packaged photos moved, scaled, relit, mirrored): none decodes."""
    from swap.samples import _frame_at

    for photo in ("astronaut", "grace_hopper"):
        img = load_photo(photo)
        for i in range(20):
            frame = _frame_at(img, i / 20, (640, 480) if i % 2 else (480, 640))
            assert not core.detect_frames([frame[:, ::-1] if i % 3 == 0 else frame]).found


def test_single_watermarked_image_detected():
    img = load_photo("grace_hopper")
    marked = core.embed_frame(img, 0x1234ABCD)
    psnr = 10 * np.log10(255 ** 2 / np.mean((marked.astype(float) - img) ** 2))
    assert psnr > 40
    r = core.detect_frames([marked])
    assert r.found and r.payload_id == "1234abcd"


def test_too_small_and_garbage_are_clean_errors(tmp_path):
    with pytest.raises(core.WatermarkError, match="too small to carry"):
        core.Embedder(1, (120, 96))
    tiny = make_face_video(tmp_path / "tiny.mp4", frames=5, size=(96, 96), audio=False)
    r = cli("watermark", str(tiny), home=tmp_path / "home")
    assert r.returncode == 2 and r.stderr.startswith("error:") and "too small to carry" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    r = cli("watermark", str(tmp_path / "junk.mp4"), home=tmp_path / "home")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_corrupt_store_is_a_clean_error(signed, tmp_path):
    bad = tmp_path / "bad_store"
    signed["store"].export(bad)
    rec = next(bad.glob("*/*.json"))
    rec.write_text(rec.read_text()[:40])
    with pytest.raises(StoreError, match="corrupt manifest store"):
        list(ManifestStore(bad).records())
    stripped = A.remux_strip(signed["out"], tmp_path / "s.mp4")
    r = cli("watermark", str(stripped), "--store", str(bad), home=signed["home"])
    assert r.returncode == 2 and "corrupt manifest store" in r.stderr and "Traceback" not in r.stderr
    # a manifest file that no longer matches its record
    bad2 = tmp_path / "bad2"
    signed["store"].export(bad2)
    c = next(bad2.glob("*/*.c2pa"))
    c.write_bytes(c.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(StoreError, match="does not match its record"):
        st = ManifestStore(bad2)
        st.manifest(st.lookup(signed["binding"].payload)[0])
    (tmp_path / "file_store").write_text("x")
    r = cli("store", "list", "--store", str(tmp_path / "file_store"), home=signed["home"])
    assert r.returncode == 2 and "not a folder" in r.stderr


def test_watermark_imports_neither_torch_nor_swap_nor_detect():
    code = ("import sys, provenance.watermark.core, provenance.watermark.resolve, provenance.watermark.binding, "
            "provenance.watermark.attacks, provenance.watermark.cli, provenance.store; "
            "bad = [m for m in ('torch', 'swap', 'detect', 'onnxruntime') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

"""verify's own reading of a file after c2pa's Reader (issue 14, speed): only the parts that hold the
manifest store are read, the claim signature is found without parsing the whole store, crJSON is asked
for only where the chain cannot be read, and every one of these gives exactly what the whole-file,
whole-store path gave (the reports are compared field for field)."""
from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest

from provenance import c2pa_report, c2pa_store, c2pa_verify, keys
from provenance.c2pa_sign import sign_file
from provenance.c2pa_store import FileScan, claim_signature, parse_store, scan_file, signature_box
from swap.samples import make_face_video, save_photo

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "c2pa"
EXTRA = Path(__file__).resolve().parent / "fixtures" / "c2pa_extra"


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    d = tmp_path_factory.mktemp("scan")
    ident = keys.generate_identity(d / "id", name="scan test")
    raw = [save_photo("astronaut", d / "a.jpg"), save_photo("grace_hopper", d / "g.png"),
           make_face_video(d / "v.mp4", frames=8, size=(320, 240))]
    return [sign_file(p, d / ("s_" + p.name), ident).out for p in raw], str(ident.key_dir / "root.pem")


def _whole(p: Path) -> FileScan:
    return c2pa_store._scan(Path(p).read_bytes())


def _variants(files, out: Path):
    """The signed files, third-party ones, and altered copies: cut short, bytes flipped near the front,
    an MP4 with a non-zero free box, an mfra box and slack after its manifest store."""
    third = [p for d in (FIXTURES, EXTRA) if d.is_dir() for p in sorted(d.iterdir())
             if p.suffix.lower() in (".jpg", ".png", ".mp4", ".dng", ".wav", ".svg", ".pdf")]
    yield from files
    yield from third
    for n, p in enumerate([*files, *third[:6]]):
        data = p.read_bytes()
        for k, cut in enumerate((len(data) // 3, len(data) - 7, 40)):
            q = out / f"cut{n}_{k}{p.suffix}"
            q.write_bytes(data[:cut])
            yield q
        flipped = bytearray(data)
        for i in range(100, min(len(data), 60000), 977):
            flipped[i] ^= 0x5A
        q = out / f"flip{n}{p.suffix}"
        q.write_bytes(bytes(flipped))
        yield q
    mp4 = next(p for p in files if p.suffix == ".mp4").read_bytes()
    q = out / "extra_boxes.mp4"
    q.write_bytes(mp4 + struct.pack(">I4s", 24, b"free") + b"\x00" * 8 + b"tampered"
                  + struct.pack(">I4s", 16, b"mfra") + b"\x00" * 8 + struct.pack(">I4s", 0, b"skip") + b"\x01\x00")
    yield q


def test_scan_reads_only_what_it_needs_and_finds_what_a_whole_read_finds(signed, tmp_path):
    files, _ = signed
    seen = 0
    for p in _variants(files, tmp_path):
        assert scan_file(p) == _whole(p), p.name
        seen += 1
    assert seen > 20
    jpg, png, mp4 = files
    with open(jpg, "rb") as f:          # the metadata segments (read in 64 KiB steps), not the picture
        head = c2pa_store.jpeg_head(f, jpg.stat().st_size)
        assert len(head) < min(jpg.stat().st_size, len(scan_file(jpg).store) + 3 * c2pa_store.STEP)
    with open(png, "rb") as f:          # the signature and the caBX chunk alone
        chunk = c2pa_store.png_store_chunk(f, png.stat().st_size)
        assert chunk is not None and len(chunk) == 8 + 12 + len(scan_file(png).store)
    with open(mp4, "rb") as f:          # mdat shrunk to an empty box
        skel = c2pa_store.bmff_skeleton(f, mp4.stat().st_size, c2pa_store.WHOLE_FILE_LIMIT)
        assert len(skel) < mp4.stat().st_size / 2 and b"mdat" in skel
    w, base = scan_file(tmp_path / "extra_boxes.mp4").bmff, scan_file(mp4).bmff
    assert (w.free_bytes - base.free_bytes, w.free_nonzero - base.free_nonzero, w.mfra_bytes - base.mfra_bytes) \
        == (16 + 2, 8 + 1, 16)


def _signature_box_full_parse(store, label):
    """The claim signature's COSE box as found before: the whole store parsed, then the manifest's child."""
    root = parse_store(store)
    if root is None or not root.children:
        return None
    m = next((c for c in root.children if c.label == label), None) if label else root.children[-1]
    sig = m.child("c2pa.signature") if m is not None else None
    return None if sig is None else next((b for k, b in sig.content if k == b"cbor"), None)


def test_claim_signature_without_parsing_the_whole_store(signed, tmp_path):
    files, _ = signed
    found = 0
    for p in _variants(files, tmp_path):
        store = scan_file(p).store
        if not store:
            continue
        try:
            root = parse_store(store)
        except (struct.error, ValueError, IndexError):
            continue
        for label in [None, "urn:c2pa:none", *(c.label for c in (root.children if root else []))]:
            assert signature_box(store, label) == _signature_box_full_parse(store, label), (p.name, label)
            found += claim_signature(store, label) is not None
    assert found >= len(files)


def test_report_fields_unchanged_and_crjson_only_when_needed(signed, monkeypatch):
    files, root = signed
    asked = []
    real = c2pa_verify._crjson
    monkeypatch.setattr(c2pa_verify, "_crjson", lambda r: asked.append(1) or real(r))
    for p in files:
        rep = c2pa_verify.verify_file(p, [root])
        assert rep.state == "trusted" and rep.certificate.source == "manifest"
        assert rep.to_dict() == dataclasses.asdict(rep)
    assert not asked                    # the chain was readable: no second serialisation of the store
    # without the chain (unreadable claim signature), c2pa's crJSON summary names the certificate
    monkeypatch.setattr(c2pa_report, "claim_signature", lambda store, label: None)
    rep = c2pa_verify.verify_file(files[0], [root])
    assert asked and rep.certificate.source == "c2pa" and rep.cert_serial == rep.certificate.serial
    assert rep.to_dict() == dataclasses.asdict(rep)

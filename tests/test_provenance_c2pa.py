"""Keys and C2PA: real Ed25519 certificates, real manifests embedded in real MP4/JPEG/PNG files and
read back by c2pa-python (c2pa-rs)."""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
import struct
import time

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance import keys
from provenance.c2pa_sign import COMPOSITE_AI, SwapFacts, sign_file
from provenance.c2pa_verify import verify_file
from provenance.errors import KeyFileError, ProvenanceError, UnsupportedMediaError
from swap.samples import make_face_video, save_photo

C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")


def _root_main():
    """The root CLI's main, wherever the layout puts it (swap.cli today, veriswap.cli after issue 12)."""
    try:
        from veriswap.cli import main
    except ImportError:
        from veriswap.cli import main
    return main


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("c2pa")
    return {
        "video": make_face_video(d / "source.mp4", frames=12, size=(320, 240)),
        "dir": d,
    }


@pytest.fixture(scope="module")
def ident(tmp_path_factory):
    return keys.generate_identity(tmp_path_factory.mktemp("id") / "identity", name="veriswap test")


@pytest.fixture(scope="module")
def swapped(media, ident):
    facts = SwapFacts(model_hash="sha256:" + "ab" * 32, direction="a2b",
                      identities={"a": "astronaut", "b": "grace_hopper"}, frames_total=12,
                      frames_swapped=11, faces_swapped=11, source=str(media["video"]), model_name="original")
    out = media["dir"] / "swapped.mp4"
    res = sign_file(media["video"], out, ident, facts=facts)
    return out, res, facts


def _top_boxes(data: bytes):
    i = 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        if size == 1:
            size = struct.unpack(">Q", data[i + 8:i + 16])[0]
        yield i, size, kind
        i += size if size else len(data)


# ---------------- keys ----------------

def test_keygen_writes_c2pa_acceptable_certificates(tmp_path):
    d = tmp_path / "id"
    ident = keys.generate_identity(d, name="Acme Newsroom", passphrase=b"correct horse")
    for f in (keys.ROOT_KEY, keys.SIGNER_KEY, keys.TAG_KEY):
        assert stat.S_IMODE(os.stat(d / f).st_mode) == 0o600, f
    assert (d / keys.SIGNER_KEY).read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert not list(d.glob(".*.tmp"))  # atomic writes leave no temp files
    root = x509.load_pem_x509_certificate((d / keys.ROOT_CERT).read_bytes())
    cert = ident.certificate
    assert cert.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme Newsroom"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    root.public_key().verify(cert.signature, cert.tbs_certificate_bytes)  # really issued by the root
    # the chain handed to C2PA excludes the root (that is the verifier's anchor)
    assert ident.chain_pem.count(b"BEGIN CERTIFICATE") == 1
    # passphrase handling: missing and wrong passphrases are clear errors, never a crash
    with pytest.raises(KeyFileError, match="encrypted"):
        keys.load_identity(d)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        keys.load_identity(d, b"wrong")
    assert keys.load_identity(d, b"correct horse").subject == ident.subject
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        keys.generate_identity(d)


def test_default_identity_is_created_once_at_documented_place(tmp_path, monkeypatch):
    monkeypatch.setenv("VERISWAP_HOME", str(tmp_path / "home"))
    a = keys.default_identity()
    assert a.key_dir == tmp_path / "home" / "identity"
    b = keys.default_identity()
    assert a.certificate == b.certificate  # reused, not regenerated
    assert stat.S_IMODE(os.stat(a.key_dir / keys.SIGNER_KEY).st_mode) == 0o600


def test_load_identity_rejects_mismatched_cert(tmp_path):
    a = keys.generate_identity(tmp_path / "a")
    keys.generate_identity(tmp_path / "b")
    (tmp_path / "a" / keys.SIGNER_CERT).write_bytes((tmp_path / "b" / keys.SIGNER_CERT).read_bytes())
    with pytest.raises(KeyFileError, match="does not belong"):
        keys.load_identity(a.key_dir)


# ---------------- sign / verify ----------------

def test_swap_manifest_trusted_with_anchor_and_declares_what_happened(swapped, ident):
    out, res, facts = swapped
    r = verify_file(out, [ident.key_dir / keys.ROOT_CERT])
    assert (r.state, r.c2pa_state, r.exit_code) == ("trusted", "Trusted", 0)
    assert r.failures == []
    assert r.manifest_label == res.manifest_label  # label parsed from the JUMBF store at signing
    assert r.signer == "veriswap test signer" and r.algorithm == "Ed25519"
    assert r.claim_generator.startswith("veriswap/")
    assert r.ai_generated and r.digital_source_types == [COMPOSITE_AI]
    assert [a["action"] for a in r.actions] == ["c2pa.opened", "c2pa.edited"]
    assert r.ingredients == [{"title": "source.mp4", "format": "video/mp4", "relationship": "parentOf",
                              "has_manifest": False, "failures": []}]
    assert r.swap["model_hash"] == facts.model_hash and r.swap["direction"] == "a2b"
    assert r.swap["identities"] == {"a": "astronaut", "b": "grace_hopper"}
    assert (r.swap["frames_total"], r.swap["frames_swapped"], r.swap["faces_swapped"]) == (12, 11, 11)
    assert r.swap["source"] == "source.mp4"  # file name only, no local paths in a published manifest
    assert r.signed_at and r.time_source == "claimed"
    d = json.loads(r.to_json())
    assert d["state"] == "trusted" and d["schema_version"] == 2 and d["warnings"] == []
    signer_cert = keys.load_certificates(ident.key_dir / keys.SIGNER_CERT)[0]
    assert r.issuer == signer_cert.issuer.rfc4514_string()        # the CA's DN, not the signer's O
    assert r.signer_subject == signer_cert.subject.rfc4514_string()
    assert r.cert_serial == str(signer_cert.serial_number) and r.certificate.source == "manifest"
    assert r.ai_declaration == "compositeWithTrainedAlgorithmicMedia" and r.trust == "trusted"
    # c2pa-python itself agrees, independently of our report
    with c2pa.Reader(str(out)) as rd:
        store = json.loads(rd.json())
    assert store["active_manifest"] == res.manifest_label


def test_valid_but_untrusted_without_anchor_and_with_wrong_anchor(swapped, tmp_path):
    out, _, _ = swapped
    r = verify_file(out)
    assert (r.state, r.c2pa_state, r.exit_code) == ("valid-untrusted", "Valid", 1)
    assert [f.code for f in r.failures] == ["signingCredential.untrusted"]
    other = keys.generate_identity(tmp_path / "other")
    r2 = verify_file(out, [other.key_dir / keys.ROOT_CERT])
    assert (r2.state, r2.exit_code) == ("valid-untrusted", 1)
    assert r2.trust_anchors == 1


def test_revoked_signer_is_invalid_from_a_crl_or_its_certificate(swapped, ident, tmp_path):
    from provenance.revocation import Revoked, find_revoked, load_revocations

    out, _, _ = swapped
    anchor = ident.key_dir / keys.ROOT_CERT
    signer = keys.load_certificates(ident.key_dir / keys.SIGNER_CERT)[0]
    root_cert = keys.load_certificates(anchor)[0]
    root_key = keys.load_private_key(ident.key_dir / keys.ROOT_KEY)

    def crl(serials, der=False):
        now = dt.datetime.now(dt.timezone.utc)
        b = x509.CertificateRevocationListBuilder().issuer_name(root_cert.subject) \
            .last_update(now).next_update(now + dt.timedelta(days=7))
        for n in serials:
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(n)
                                          .revocation_date(now).build())
        c = b.sign(root_key, None)           # Ed25519: no separate hash
        path = tmp_path / f"{len(serials)}{'.der' if der else '.pem'}"
        path.write_bytes(c.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM))
        return path

    # the CA revokes the signer (PEM and DER CRLs), or the user lists the signer's certificate itself
    for deny in (crl([12345, signer.serial_number]), crl([signer.serial_number], der=True),
                 ident.key_dir / keys.SIGNER_CERT):
        r = verify_file(out, [anchor], [deny])
        assert (r.state, r.exit_code) == ("invalid", 1), deny
        assert [f.code for f in r.failures] == ["signingCredential.revoked"] and str(deny) in r.failures[0].words
    # a list that does not name this signer changes nothing; nor does another CA's certificate
    assert verify_file(out, [anchor], [crl([12345])]).state == "trusted"
    other = keys.generate_identity(tmp_path / "other")
    assert verify_file(out, [anchor], [other.key_dir / keys.SIGNER_CERT]).state == "trusted"
    # the same serial from another issuer is another certificate; a fingerprint alone decides too
    from provenance.revocation import CertId
    cid = CertId.of(signer)
    assert find_revoked(cid, [Revoked(x509.Name.from_rfc4514_string("O=another CA"), signer.serial_number, None,
                                      "x")]) is None
    assert find_revoked(cid, [Revoked(None, None, cid.fingerprint, "x")]) is not None
    entry = load_revocations([ident.key_dir / keys.SIGNER_CERT])[0]
    assert entry.issuer == signer.issuer and entry.fingerprint == verify_file(out, [anchor]).cert_fingerprint
    # CLI: exit 1 and the reason; a file that is no list is exit 2 with one line
    main = _root_main()
    with pytest.raises(SystemExit) as e:
        main(["provenance", "verify", str(out), "--trust-anchor", str(anchor), "--revoked", str(crl([signer.serial_number]))])
    assert e.value.code == 1
    junk = tmp_path / "junk.crl"
    junk.write_bytes(b"not a list")
    with pytest.raises(ProvenanceError, match="not a CRL, PEM certificate or sha256 deny list"):
        verify_file(out, [anchor], [junk])
    with pytest.raises(SystemExit) as e:
        main(["provenance", "verify", str(out), "--revoked", str(junk)])
    assert e.value.code == 2


def test_one_flipped_byte_is_invalid(swapped, ident, tmp_path):
    out, _, _ = swapped
    data = bytearray(out.read_bytes())
    mdat = next(off for off, size, kind in _top_boxes(bytes(data)) if kind == b"mdat")
    data[mdat + 1000] ^= 0x01
    bad = tmp_path / "flipped.mp4"
    bad.write_bytes(bytes(data))
    r = verify_file(bad, [ident.key_dir / keys.ROOT_CERT])
    assert (r.state, r.c2pa_state, r.exit_code) == ("invalid", "Invalid", 1)
    assert "assertion.bmffHash.mismatch" in [f.code for f in r.failures]
    assert any("changed after signing" in f.words for f in r.failures)


def test_stripped_manifest_reads_as_no_manifest(swapped, tmp_path):
    out, _, _ = swapped
    data = bytearray(out.read_bytes())
    boxes = [(o, s) for o, s, k in _top_boxes(bytes(data)) if k == b"uuid" and data[o + 8:o + 24] == C2PA_UUID]
    assert len(boxes) == 1
    o, s = boxes[0]
    data[o + 4:o + 8] = b"free"  # same size, so the video's offsets stay right
    data[o + 8:o + s] = bytes(s - 8)
    stripped = tmp_path / "stripped.mp4"
    stripped.write_bytes(bytes(data))
    r = verify_file(stripped)
    assert (r.state, r.exit_code, r.failures) == ("no-manifest", 1, [])


def test_expired_certificate_is_invalid(media, tmp_path):
    # a signing cert that expires 2 s after signing (validity starts 5 min back for clock skew)
    rk, root, sk, cert = keys.make_certificates("expiring", signer_lifetime=dt.timedelta(minutes=5, seconds=2))
    pem = serialization.Encoding.PEM
    ident = keys.Identity(tmp_path, sk, cert.public_bytes(pem), cert, root.public_bytes(pem))
    out = sign_file(media["video"], tmp_path / "exp.mp4", ident).out
    time.sleep(max(0.0, cert.not_valid_after_utc.timestamp() - time.time()) + 1.2)
    r = verify_file(out, [root.public_bytes(pem)])
    assert (r.state, r.exit_code) == ("invalid", 1)
    assert "signingCredential.expired" in [f.code for f in r.failures]


def test_sign_jpeg_and_png_and_refuse_webm(media, ident, tmp_path):
    anchor = ident.key_dir / keys.ROOT_CERT
    for name in ("photo.jpg", "photo.png"):
        src = save_photo("grace_hopper", tmp_path / name)
        out = sign_file(src, tmp_path / f"signed_{name}", ident).out
        r = verify_file(out, [anchor])
        assert r.state == "trusted", (name, r.failures)
        assert [a["action"] for a in r.actions] == ["c2pa.opened"] and not r.ai_generated
    webm = tmp_path / "clip.webm"
    webm.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(60))
    with pytest.raises(UnsupportedMediaError) as e:
        sign_file(webm, tmp_path / "out.webm", ident)
    assert e.value.exit_code == 2


def test_resigning_keeps_the_ai_declaration_and_history(swapped, ident, tmp_path):
    out, _, _ = swapped
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(out.read_bytes())
    sign_file(copy, None, ident)  # in place, generic (no facts)
    r = verify_file(copy, [ident.key_dir / keys.ROOT_CERT])
    assert r.state == "trusted" and r.manifests == 2
    assert r.ingredients[0]["has_manifest"] is True
    assert r.ai_generated and r.swap["direction"] == "a2b"  # re-signing does not launder a swap


def test_unusable_inputs_are_clean_errors(tmp_path, ident):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 20)
    for call in (lambda: verify_file(garbage), lambda: verify_file(tmp_path / "missing.mp4"),
                 lambda: sign_file(garbage, tmp_path / "o.mp4", ident),
                 lambda: verify_file(garbage, [garbage])):
        with pytest.raises(ProvenanceError) as e:
            call()
        assert e.value.exit_code == 2

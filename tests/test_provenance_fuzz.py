"""Fuzzing: thousands of mutated tag files and C2PA manifests give only clean outcomes (a report, or a
ProvenanceError with exit code 2), never a crash, and a mutated tag file is never accepted as authentic
unless it still says exactly the same thing."""
from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance import keys
from provenance.c2pa_sign import sign_file
from provenance.c2pa_verify import VerifyReport, verify_file
from provenance.errors import ProvenanceError
from provenance.tags import CheckReport, check_video, load_tag_key, tag_video
from swap.samples import make_face_video

C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
FUZZ = settings(max_examples=1200, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    video = make_face_video(d / "tiny.mp4", frames=6, size=(128, 96), audio=False)
    ident = keys.generate_identity(d / "id")
    hkey = load_tag_key(ident.key_dir / keys.TAG_KEY)
    sk = load_tag_key(ident.key_dir / keys.SIGNER_KEY)
    pk = load_tag_key(ident.key_dir / keys.SIGNER_CERT)
    tags = {"hmac": (tag_video(video, hkey, out=d / "h.tags").read_bytes(), hkey),
            "ed25519": (tag_video(video, sk, mode="ed25519", out=d / "e.tags", group=4).read_bytes(), pk)}
    signed = sign_file(video, d / "signed.mp4", ident).out
    data = signed.read_bytes()
    box = _c2pa_box(data)
    return {"dir": d, "video": video, "tags": tags, "signed": data, "box": box,
            "anchor": ident.key_dir / keys.ROOT_CERT}


def _c2pa_box(data: bytes):
    i = 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind == b"uuid" and data[i + 8:i + 24] == C2PA_UUID:
            return i, size
        i += size
    raise AssertionError("no C2PA box")


def _semantic(data: bytes):
    try:
        return [json.loads(line) for line in data.splitlines()]
    except ValueError:
        return None


# a mutation: (kind, position fraction, payload)
mutation = st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dupline", "dropline",
                                      "swaplines", "hexdigit", "hexdigit"]),
                     st.floats(0, 1, allow_nan=False), st.binary(min_size=1, max_size=8))


def _mutate(data: bytes, muts) -> bytes:
    b = bytearray(data)
    for kind, frac, payload in muts:
        if not b:
            break
        pos = min(int(frac * len(b)), len(b) - 1)
        if kind == "hexdigit":  # stays well-formed: must be caught by the MACs/signatures, not the parser
            while pos < len(b) - 1 and chr(b[pos]) not in "0123456789abcdef":
                pos += 1
            if chr(b[pos]) in "0123456789abcdef":
                digits = "0123456789abcdef".replace(chr(b[pos]), "")
                b[pos] = ord(digits[payload[0] % 15])
        elif kind == "flip":
            b[pos] ^= payload[0] or 1
        elif kind == "set":
            b[pos:pos + len(payload)] = payload
        elif kind == "insert":
            b[pos:pos] = payload
        elif kind == "delete":
            del b[pos:pos + len(payload)]
        elif kind == "truncate":
            del b[pos:]
        else:
            lines = bytes(b).split(b"\n")
            j = min(int(frac * len(lines)), len(lines) - 1)
            k = (j + 1 + payload[0]) % len(lines)
            if kind == "dupline":
                lines.insert(j, lines[j])
            elif kind == "dropline":
                del lines[j]
            else:
                lines[j], lines[k] = lines[k], lines[j]
            b = bytearray(b"\n".join(lines))
    return bytes(b)


@pytest.mark.parametrize("mode", ["hmac", "ed25519"])
def test_fuzz_tag_files(base, mode):
    original, key = base["tags"][mode]
    path = base["dir"] / f"fuzz_{mode}.tags"
    orig_sem = _semantic(original)
    seen = {"report": 0, "error": 0, "accepted_changed": 0}

    @FUZZ
    @given(st.lists(mutation, min_size=1, max_size=4))
    def run(muts):
        data = _mutate(original, muts)
        path.write_bytes(data)
        try:
            r = check_video(base["video"], path, key)
        except ProvenanceError as e:
            assert e.exit_code == 2 and str(e)
            seen["error"] += 1
            return
        assert isinstance(r, CheckReport)
        json.loads(r.to_json())
        seen["report"] += 1
        if r.ok:
            # accepted only if it still states exactly the same frames (e.g. JSON whitespace/key order)
            assert _semantic(data) == orig_sem, data
            seen["accepted_changed"] += data != original

    run()
    # both outcomes were exercised (not just one kind of rejection)
    assert seen["report"] > 50 and seen["error"] > 50, seen


def test_fuzz_c2pa_manifests(base):
    data, (off, size) = base["signed"], base["box"]
    path = base["dir"] / "fuzz.mp4"
    seen = {}
    orig = verify_file(base["dir"] / "signed.mp4", [base["anchor"]])
    claims = ("manifest_label", "title", "signer", "issuer", "actions", "ingredients", "swap",
              "digital_source_types", "signed_at")

    @FUZZ
    @given(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=4),
           st.booleans())
    def run(edits, with_anchor):
        b = bytearray(data)
        for rel, val in edits:
            b[off + rel] = val
        path.write_bytes(bytes(b))
        try:
            r = verify_file(path, [base["anchor"]] if with_anchor else [])
        except ProvenanceError as e:
            assert e.exit_code == 2 and str(e)
            seen["error"] = seen.get("error", 0) + 1
            return
        assert isinstance(r, VerifyReport)
        assert r.state in ("trusted", "valid-untrusted", "invalid", "no-manifest")
        assert r.exit_code == (0 if r.state == "trusted" else 1)
        json.loads(r.to_json())
        seen[r.state] = seen.get(r.state, 0) + 1
        if r.state in ("trusted", "valid-untrusted"):
            # bytes the signature does not cover (padding) may change; what the manifest claims may not
            assert [getattr(r, c) for c in claims] == [getattr(orig, c) for c in claims]

    run()
    assert seen.get("invalid", 0) > 100, seen

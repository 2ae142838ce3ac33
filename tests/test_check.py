"""`veriswap check` on real material made with the project's own tools (tests/check_world.py) and on the
third-party C2PA fixtures in ../shared/fixtures/c2pa (expected states from c2pa-python's Reader itself):
verdict words, reasons, exit codes, JSON schema, batch resume, the HTML files, and the combining rules."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import check_world as W  # noqa: E402

from veriswap.check import CheckOptions, check_file, check_paths, decide  # noqa: E402
from veriswap.check.report_html import write_html  # noqa: E402
from veriswap.check.report_json import SCHEMA_VERSION, document  # noqa: E402

FIXTURES = W.ANCHORS


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """A private $VERISWAP_HOME: no user check.toml is read, results files land in the test's folder."""
    monkeypatch.setenv("VERISWAP_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return W.build(tmp_path_factory.mktemp("check"))


@pytest.fixture(scope="module")
def opts(world):
    return CheckOptions(trust_anchors=[str(world["root"])], tag_key=str(world["tag_key"]))


def _cli(*args: str) -> int:
    from veriswap.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(args))
    return e.value.code


# ---- verdicts on real material ------------------------------------------------------------------

def test_signed_ai_swap_is_signed_ai_declared_and_trusted(world, opts):
    r = check_file(world["swap"], opts)
    v = r["verdict"]
    assert (v["word"], v["trusted"], v["exit_code"]) == ("signed, AI declared", True, 0)
    assert r["c2pa"]["ai_declaration"] == "compositeWithTrainedAlgorithmicMedia"
    assert r["c2pa"]["signer"] == "check test signer"
    assert r["tags"]["status"] == "absent" and r["detector"]["status"] == "absent"
    # the same file without the signer's root as an anchor: intact, but nobody vouches for the signer
    r2 = check_file(world["swap"], CheckOptions())
    assert r2["verdict"]["word"] == "signed, AI declared" and r2["verdict"]["exit_code"] == 1
    assert "NOT trusted" in r2["verdict"]["headline"]


def test_tagged_camera_clip_is_a_signed_capture(world, opts):
    r = check_file(world["cam"], opts)
    assert r["verdict"]["word"] == "signed capture" and r["verdict"]["exit_code"] == 0
    assert r["c2pa"]["status"] == "absent"
    assert r["tags"]["ok"] and r["tags"]["strip"] == "." * W.N and r["tags"]["frames_tagged"] == W.N


def test_one_altered_frame_is_tampered_and_located(world, opts):
    r = check_file(world["cam_edit"], opts)
    v = r["verdict"]
    assert v["word"] == "tampered" and v["exit_code"] == 1 and not v["trusted"]
    assert [(f["status"], f["video_frame"]) for f in r["tags"]["flagged"]] == [("N", W.ALTERED)]
    assert f"altered frame {W.ALTERED}" in v["headline"]
    assert r["tags"]["strip"][W.ALTERED] == "N" and r["tags"]["strip"].count(".") == W.N - 1


def test_signed_file_with_a_changed_frame_is_tampered_by_its_c2pa_hash(world, opts):
    r = check_file(world["swap_edit"], opts)
    v = r["verdict"]
    assert v["word"] == "tampered" and v["exit_code"] == 1
    assert "assertion.bmffHash.mismatch" in [f["code"] for f in r["c2pa"]["failures"]]
    assert "changed after signing" in v["headline"]


def test_unsigned_clip_cannot_tell_and_a_signed_photo_is_a_capture(world, opts):
    r = check_file(world["unsigned"], opts)
    assert r["verdict"]["word"] == "cannot tell" and r["verdict"]["exit_code"] == 1
    p = check_file(world["photo"], opts)
    assert p["kind"] == "image" and p["verdict"]["word"] == "signed capture" and p["verdict"]["exit_code"] == 0
    assert p["tags"]["status"] == "not-applicable"


def test_tags_without_a_key_are_named_not_ignored(world):
    r = check_file(world["cam"], CheckOptions())
    assert r["tags"]["status"] == "no-key"
    assert r["verdict"]["word"] == "cannot tell"
    assert any("--tag-key" in x for x in r["verdict"]["reasons"])


def test_third_party_fixtures_get_c2pa_readers_own_state():
    """Expected states from c2pa-python's Reader with the fixtures' test anchors, never from veriswap."""
    import c2pa

    anchors = FIXTURES / "test_anchors.pem"
    opts = CheckOptions(trust_anchors=[str(anchors)])
    settings = {"trust": {"trust_anchors": anchors.read_text()}, "verify": {"verify_trust": True,
                                                                          "remote_manifest_fetch": False}}
    words = {"Trusted": ("signed capture", "signed, AI declared"), "Valid": ("signed capture", "signed, AI declared"),
             "Invalid": ("tampered", "signature not valid"), None: ("cannot tell",)}
    files = sorted(p for p in FIXTURES.iterdir() if p.suffix.lower() in (".jpg", ".mp4", ".dng"))
    assert len(files) >= 7
    for p in files:
        ctx = c2pa.Context.from_dict(settings)
        try:
            with open(p, "rb") as f, c2pa.Reader("video/mp4" if p.suffix == ".mp4" else
                                                 ("image/dng" if p.suffix == ".dng" else "image/jpeg"),
                                                 f, context=ctx) as rd:
                expected = rd.get_validation_state()
        except c2pa.C2paError.ManifestNotFound:
            expected = None
        finally:
            ctx.close()
        r = check_file(p, opts)
        got = r["c2pa"].get("report", {}).get("c2pa_state") if r["c2pa"]["status"] == "checked" else None
        assert got == expected, p.name
        assert r["verdict"]["word"] in words[expected], (p.name, r["verdict"])
        assert r["verdict"]["exit_code"] == (0 if expected == "Trusted" else 1), p.name
    xca = check_file(FIXTURES / "XCA.jpg", opts)
    assert xca["verdict"]["word"] == "tampered"


# ---- the combining rules ------------------------------------------------------------------------

def _ev(state=None, ai=False, tags=None, det=None, signer_trust="trusted", failures=()):
    c2 = {"status": "checked" if state and state != "no-manifest" else "absent", "state": state,
          "ai_declared": ai, "signer_trust": signer_trust, "failures": [{"code": c, "words": c} for c in failures],
          "tampered": any("mismatch" in c for c in failures)}
    tg = {"status": "absent"} if tags is None else {"status": "checked", "ok": tags, "frames_tagged": 10,
                                                     "flagged": [] if tags else [{"status": "N", "video_frame": 3, "position": 3}]}
    dt = {"status": "absent"} if det is None else {"status": "checked", "verdict": det, "score": 0.9, "threshold": 0.5,
                                                    "frames_flagged": 5, "frames_sampled": 8}
    return {"c2pa": c2, "tags": tg, "detector": dt}


def test_a_detector_never_silently_overrides_a_trusted_signature():
    v = decide(_ev("trusted", det="FAKE"))
    assert v["word"] == "signed capture" and v["exit_code"] == 0
    assert v["conflicts"] and "detector" in v["conflicts"][0]
    assert any(r.startswith("detector: FAKE") for r in v["reasons"])          # both shown
    v = decide(_ev("trusted", ai=True, det="REAL"))
    assert v["word"] == "signed, AI declared" and v["conflicts"]
    v = decide(_ev(tags=True, det="FAKE"))
    assert v["word"] == "signed capture" and v["conflicts"]


def test_rules_table():
    assert decide(_ev())["word"] == "cannot tell"
    assert decide(_ev(det="UNCERTAIN"))["word"] == "cannot tell"
    u = decide(_ev(det="FAKE"))
    assert u["word"] == "unsigned + detector result" and "likely manipulated" in u["headline"] and u["exit_code"] == 1
    assert decide(_ev(det="REAL"))["word"] == "unsigned + detector result"
    t = decide(_ev("trusted", tags=False))
    assert t["word"] == "tampered" and "altered frame 3" in t["headline"] and t["conflicts"]
    assert decide(_ev("invalid", failures=["signingCredential.revoked"]))["word"] == "signature not valid"
    assert decide(_ev("invalid", failures=["assertion.dataHash.mismatch"]))["word"] == "tampered"
    vu = decide(_ev("valid-untrusted", signer_trust="untrusted"))
    assert vu["word"] == "signed capture" and vu["exit_code"] == 1 and not vu["trusted"]
    assert decide({"error": "no such file: x"})["exit_code"] == 2


# ---- the command: exit codes, JSON, batch ------------------------------------------------------------

def test_cli_exit_codes_and_json_schema(world, capsys):
    root, key = str(world["root"]), str(world["tag_key"])
    assert _cli("check", str(world["swap"]), "--trust-anchor", root) == 0
    assert _cli("check", str(world["cam"]), "--tag-key", key) == 0
    assert _cli("check", str(world["cam_edit"]), "--tag-key", key) == 1
    assert _cli("check", str(world["unsigned"])) == 1
    out = capsys.readouterr().out
    assert "SIGNED, AI DECLARED" in out and "TAMPERED" in out and "CANNOT TELL" in out
    assert _cli("check", str(world["dir"] / "nope.mp4")) == 2
    assert _cli("check", str(world["swap"]), "--trust-anchor", str(world["dir"] / "none.pem")) == 2
    assert _cli("check", str(world["swap"]), "--jobs", "-1") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no such" in err
    bad = world["dir"] / "garbage.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    assert _cli("check", str(bad)) == 2                     # a named file that cannot be read at all
    capsys.readouterr()
    assert _cli("check", str(world["swap"]), str(world["cam_edit"]), "--trust-anchor", root, "--tag-key", key,
                "--json", "--no-progress", "--fresh") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "veriswap.check" and doc["schema_version"] == SCHEMA_VERSION == 1
    assert doc["exit_code"] == 1 and doc["summary"]["files"] == 2
    assert [f["verdict"]["word"] for f in doc["files"]] == ["signed, AI declared", "tampered"]
    for f in doc["files"]:
        assert set(f) >= {"path", "kind", "size", "seconds", "verdict", "c2pa", "tags", "detector", "error"}
        assert "media" not in f and "_key" not in f
        assert set(f["verdict"]) == {"word", "headline", "trusted", "exit_code", "reasons", "conflicts"}


def test_folder_batch_resumes_from_its_results_file(world, opts, tmp_path):
    results = tmp_path / "results.jsonl"
    seen = []
    recs, skipped = check_paths([world["dir"]], opts, jobs=2, results=results,
                                progress=lambda d, t, r: seen.append(r.get("path")))
    words = {Path(r["path"]).name: r["verdict"]["word"] for r in recs}
    assert words["grace_swap.mp4"] == "signed, AI declared" and words["cam_edit.mp4"] == "tampered"
    assert words["cam.mp4"] == "signed capture" and words["clip.mp4"] == "cannot tell"
    assert skipped.get("veriswap sidecar (tags, labels, results)", 0) >= 2   # the .tags files are not inputs
    n = len(recs)
    assert len([s for s in seen if s]) == n
    # an interrupted run: keep the header and 3 records plus half a line; the re-run checks only the rest
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:4]) + "\n" + lines[5][:40])
    seen.clear()
    recs2, _ = check_paths([world["dir"]], opts, jobs=2, results=results,
                           progress=lambda d, t, r: seen.append(r.get("path")))
    assert len([s for s in seen if s]) == n - 3
    assert [r["verdict"]["word"] for r in recs2] == [r["verdict"]["word"] for r in recs]
    # everything done: nothing is checked again; other options start over
    seen.clear()
    check_paths([world["dir"]], opts, jobs=1, results=results, progress=lambda d, t, r: seen.append(r.get("path")))
    assert not [s for s in seen if s]
    check_paths([world["dir"]], CheckOptions(), jobs=1, results=results,
                progress=lambda d, t, r: seen.append(r.get("path")))
    assert len([s for s in seen if s]) == n


def test_config_file_supplies_anchors_and_tag_key(world, tmp_path, capsys):
    cfg = tmp_path / "check.toml"
    cfg.write_text(f'trust_anchors = ["{world["root"]}"]\ntag_key = "{world["tag_key"]}"\n')
    assert _cli("check", str(world["swap"]), "--config", str(cfg)) == 0
    assert _cli("check", str(world["cam"]), "--config", str(cfg)) == 0
    cfg.write_text('trust_anchor = "x.pem"\n')
    assert _cli("check", str(world["swap"]), "--config", str(cfg)) == 2
    assert "unknown setting" in capsys.readouterr().err


# ---- detector -------------------------------------------------------------------------------------

def test_detector_timeline_and_frames_flagged(world, tmp_path):
    det = W.make_detector(tmp_path / "det", threshold=0.0, pretrained_note=True)
    o = CheckOptions(trust_anchors=[str(world["root"])], tag_key=str(world["tag_key"]), detector=str(det), frames=4)
    r = check_file(world["unsigned"], o)
    d = r["detector"]
    assert d["status"] == "checked" and d["frames_sampled"] == len(d["timeline"]) == 4
    with_face = [t for t in d["timeline"] if t["prob"] is not None]
    assert d["frames_flagged"] == len(with_face) >= 3          # threshold 0: every face frame is above it
    assert d["verdict"] in ("FAKE", "REAL", "UNCERTAIN")
    v = r["verdict"]
    assert v["word"] == ("unsigned + detector result" if d["verdict"] in ("FAKE", "REAL") else "cannot tell")
    # a trusted capture stays a trusted capture; a FAKE opinion is shown as a named conflict
    c = check_file(world["cam"], o)
    assert c["verdict"]["word"] == "signed capture" and c["verdict"]["exit_code"] == 0
    assert bool(c["verdict"]["conflicts"]) == (c["detector"]["verdict"] == "FAKE")


# ---- HTML files -------------------------------------------------------------------------------------

def test_html_pages_are_self_contained(world, opts, tmp_path):
    o = CheckOptions(**{**opts.__dict__, "media": True})
    recs, skipped = check_paths([world["dir"] / "camera", world["photo"], world["swap"]], o, jobs=1)
    pages = write_html(recs, tmp_path / "report.html", document(recs, skipped)["summary"])
    assert len(pages) == 1 + len(recs)
    for p in pages:
        text = p.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text), p
        assert "<link" not in text and "@import" not in text and "url(" not in text
        for src in re.findall(r'<img src="([^"]+)"', text):
            assert src.startswith("data:image/")
    one = write_html([recs[1]], tmp_path / "one.html", {})
    assert one == [tmp_path / "one.html"] and "tampered" in one[0].read_text()

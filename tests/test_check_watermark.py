"""`veriswap check` on a stripped, re-encoded veriswap swap: no C2PA manifest left, but the invisible
watermark names the manifest kept in the $VERISWAP_HOME store (issue 15). Built cheaply with the library:
embed -> sign (manifest into the store) -> strip via remux -> re-encode CRF 28."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_watermark import watermark_video  # noqa: E402

from provenance import keys  # noqa: E402
from provenance.c2pa_sign import SwapFacts  # noqa: E402
from provenance.store import ManifestStore  # noqa: E402
from provenance.watermark import attacks as A  # noqa: E402
from provenance.watermark.binding import new_binding, sign_watermarked  # noqa: E402
from swap.samples import make_face_video  # noqa: E402
from veriswap.check import CheckOptions, check_file  # noqa: E402
from veriswap.check.report_html import file_page  # noqa: E402
from veriswap.check.report_json import document  # noqa: E402
from veriswap.check.verdict import WM_NOT_IN_STORE, WM_RECOVERED  # noqa: E402

SIGNER = "veriswap local signer"          # the CN of the default identity, as verify reports it


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("checkwm")
    home = d / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("VERISWAP_HOME", str(home))
    ident = keys.default_identity()
    src = make_face_video(d / "source.mp4", "astronaut", frames=40, audio=False)
    b = new_binding(ident)
    unsigned = watermark_video(src, d / "unsigned.mp4", b.pid)
    facts = SwapFacts(model_hash="sha256:" + "ab" * 32, direction="a2b", identities={"a": "x", "b": "y"},
                      frames_total=40, frames_swapped=40, faces_swapped=40, source=str(src), model_name="original")
    res = sign_watermarked(unsigned, d / "swap.mp4", ident, b, facts=facts, duration_ms=1600)   # default store
    remuxed = A.remux_strip(res.out, d / "remuxed.mp4")
    stripped = A.transcode(remuxed, d / "stripped.mp4", crf=28)
    yield {"dir": d, "home": home, "ident": ident, "binding": b, "stripped": stripped, "src": src,
           "root": ident.key_dir / keys.ROOT_CERT}
    mp.undo()


def test_stripped_swap_recovers_its_manifest_from_the_store(world):
    r = check_file(world["stripped"], CheckOptions(trust_anchors=[str(world["root"])]))
    v, wm = r["verdict"], r["watermark"]
    assert r["c2pa"]["status"] == "absent"
    assert (v["word"], v["exit_code"], v["trusted"]) == (WM_RECOVERED, 1, False)
    assert wm["status"] == "checked" and wm["found"] and wm["payload"] == world["binding"].payload
    assert wm["z"] > 4 and wm["frames_found"] > 10 and wm["store_entries"] == 1
    rc = wm["recovered"]
    assert rc["verified"] and rc["state"] == "intact-trusted" and rc["content_changed"]
    assert rc["signer"] == SIGNER and rc["ai_declared"]
    assert rc["model"].startswith("sha256:abab") and rc["source"] == "source.mp4"
    assert f"signed by {SIGNER} at {rc['signed_at']}" in v["headline"]
    assert "model sha256:abab" in v["headline"] and "source source.mp4" in v["headline"]
    assert any(x.startswith("watermark: veriswap payload") for x in v["reasons"])
    # JSON: a `watermark` object in the record, plain JSON types
    doc = json.loads(json.dumps(document([r])))
    assert doc["files"][0]["watermark"]["recovered"]["signer"] == SIGNER
    assert doc["exit_code"] == 1 and doc["summary"]["by_word"] == {WM_RECOVERED: 1}
    page = file_page(r)
    assert "<section id=watermark>" in page and "manifest recovered" in page


def test_watermark_without_store_entry(world):
    r = check_file(world["stripped"], CheckOptions(store=str(world["dir"] / "empty_store")))
    v = r["verdict"]
    assert (v["word"], v["exit_code"]) == (WM_NOT_IN_STORE, 1)
    assert r["watermark"]["found"] and r["watermark"]["recovered"] is None


def test_cli_reports_the_recovered_manifest(world, capsys):
    from veriswap.cli import main

    with pytest.raises(SystemExit) as e:
        main(["check", str(world["stripped"]), "--trust-anchor", str(world["root"]), "--json"])
    assert e.value.code == 1
    rec = json.loads(capsys.readouterr().out)["files"][0]
    assert rec["verdict"]["word"] == WM_RECOVERED and rec["watermark"]["recovered"]["signer"] == SIGNER


def test_unwatermarked_unsigned_clip_stays_cannot_tell(world):
    r = check_file(world["src"], CheckOptions())
    assert r["verdict"]["word"] == "cannot tell" and r["verdict"]["exit_code"] == 1
    assert r["watermark"]["status"] == "checked" and not r["watermark"]["found"]
    assert r["watermark"]["recovered"] is None

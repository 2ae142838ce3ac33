"""convert embeds the watermark by default (soft-binding assertion, manifest kept in the store) and
--no-watermark turns it off with the manifest saying so: a real swap, stripped and re-encoded at CRF 28,
still resolves to its manifest."""
from __future__ import annotations

import pytest

from provenance.c2pa_verify import verify_file
from provenance.keys import ROOT_CERT
from provenance.store import ManifestStore
from provenance.watermark import attacks as A
from provenance.watermark.media import detect_file
from provenance.watermark.resolve import resolve
from swap.convert import ConvertSettings, convert
from test_convert import setup  # noqa: F401  (module fixture: real-face videos, a tiny trained model, keys)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    h = tmp_path_factory.mktemp("vshome")
    mp.setenv("VERISWAP_HOME", str(h))
    yield h
    mp.undo()


def test_convert_watermarks_and_a_stripped_copy_resolves(setup, home):  # noqa: F811
    out = setup["dir"] / "wm" / "swapped.mp4"
    s = convert(setup["va"], setup["model"], out, setup["aln"], ConvertSettings(key_dir=str(setup["keys"]), device="cpu"))
    assert s.watermark and len(s.watermark) == 8
    rep = verify_file(out, [setup["keys"] / ROOT_CERT])
    assert rep.state == "trusted" and rep.swap["watermark"] == s.watermark
    store = ManifestStore(home / "manifests")
    assert [r.manifest_label for r in store.lookup(s.watermark)] == [s.manifest]
    stripped = A.strip_and_reencode(out, setup["dir"] / "wm" / "stripped.mp4", crf=28)
    res = resolve(stripped, store, [setup["keys"] / ROOT_CERT])
    assert res.detection.found and res.detection.payload_id == s.watermark
    assert res.best.state == "intact-trusted" and res.best.binding_ok and res.best.report["swap"]
    assert res.exit_code(anchors=True) == 0


def test_no_watermark_is_recorded(setup, home):  # noqa: F811
    out = setup["dir"] / "nowm" / "swapped.mp4"
    s = convert(setup["va"], setup["model"], out, setup["aln"],
                ConvertSettings(key_dir=str(setup["keys"]), device="cpu", watermark=False))
    assert s.watermark is None
    rep = verify_file(out, [setup["keys"] / ROOT_CERT])
    assert rep.swap["watermark"] == "off"
    assert not detect_file(out).found

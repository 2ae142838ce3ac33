"""`veriswap ui` in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright's Python API
with executable_path) against the `veriswap ui` command. A newcomer's path, clicked through as a person would:

- the address without its token is refused; with it, the app opens;
- Swap: "Use the built-in sample faces" -> Extract (face thumbnails appear) -> Train with a few seconds'
  time limit (the live preview image appears and loads) -> Convert: the result <video> plays (readyState >= 2
  and currentTime advances) beside its source, with labels and manifest links;
- Check: the signed swap ("Check it") and a tampered copy (one media byte flipped, dropped on the Check
  page as an upload) give two verdicts: "signed, AI declared" (trusted) and "tampered";
- Detect: "Make practice videos" (real clips of built-in people and labelled graphic swaps of them) ->
  Build dataset -> Train a tiny detector from scratch -> Evaluate: the training-loss and validation plots
  and the ROC and per-video score plots are images that load, and the AUC figures are shown;
- an upload whose name climbs out of the work folder is refused by the server.

Screenshots go to a temp folder; with VERISWAP_DOCS_SCREENSHOTS=1 they are written to docs/ui-*.png (the ones
the README shows). Whole file: well under 3 minutes on 2 cores (the swap trains for 5 s)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser_support import launch_browser  # noqa: E402
from test_ui import UIServer  # noqa: E402

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[1] / "docs"
TRAIN_SECONDS = int(os.environ.get("VERISWAP_UI_TRAIN_SECONDS", "5"))   # the docs' screenshot: longer
# the Detect page's material: people, frames per clip, detector epochs (the docs' screenshot: more of each)
DETECT = dict(zip(("people", "frames", "epochs"), map(int, os.environ.get("VERISWAP_UI_DETECT", "4,8,1").split(","))))


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return DOCS if os.environ.get("VERISWAP_DOCS_SCREENSHOTS") == "1" else tmp_path_factory.mktemp("ui_shots")


@pytest.fixture(scope="module")
def browser():
    yield from launch_browser()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui_browser")
    s = UIServer(root / "work", env={"VERISWAP_HOME": str(root / "home")})
    s.root = root
    yield s
    s.stop()


@pytest.fixture(scope="module")
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    pg = ctx.new_page()
    outside = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server.base, "data:", "blob:")) else None)
    pg.outside_requests = outside
    pg.console = []
    pg.on("console", lambda m: pg.console.append(f"{m.type}: {m.text}"))
    pg.on("pageerror", lambda e: pg.console.append(f"pageerror: {e}"))
    yield pg
    ctx.close()


def _wait(page, js: str, timeout: float, what: str):
    """Poll `js` with page.evaluate (wait_for_function would need 'unsafe-eval', which the app's CSP forbids)."""
    t0, err = time.time(), None
    while time.time() - t0 < timeout:
        try:
            if page.evaluate(js):
                return
        except Exception as e:  # noqa: BLE001 - a page mid-navigation: try again
            err = e
        page.wait_for_timeout(250)
    raise AssertionError(f"waiting for {what} ({timeout}s){f' ({err})' if err else ''}; console: "
                         f"{getattr(page, 'console', [])[-10:]}; page says: {page.inner_text('main')[:1500]}")


def test_refused_without_token(browser, server):
    ctx = browser.new_context()
    pg = ctx.new_page()
    r = pg.goto(server.base + "/")
    assert r.status == 403 and "access token" in pg.inner_text("body")
    r = pg.goto(server.base + "/?token=not-the-token")
    assert r.status == 403 and "wrong access token" in pg.inner_text("body")
    r = pg.goto(server.base + "/static/app.js")
    assert r.status == 403
    ctx.close()


def test_swap_on_built_in_faces_then_check(page, server, shots):
    t0 = time.time()
    r = page.goto(server.url + "#swap")
    assert r.status == 200
    assert "token=" not in page.url                     # the token is kept out of the address bar
    page.click("#btn-samples")
    _wait(page, "document.querySelector('#p-title').textContent === 'sample-faces'", 20, "the new swap")
    _wait(page, "!document.querySelector('#btn-extract').disabled", 60, "the sample clips")
    page.click("#btn-extract")
    _wait(page, """(() => { const a = [...document.querySelectorAll('#faces-a img')], b = [...document.querySelectorAll('#faces-b img')];
                 return a.length >= 10 && b.length >= 10 && a.concat(b).slice(0, 8).every(i => i.complete && i.naturalWidth > 0); })()""",
          120, "face thumbnails of both people")
    t_extract = time.time() - t0

    page.fill("#tr-time", str(TRAIN_SECONDS))
    page.fill("#tr-prev", "1")
    page.click("#btn-train")
    _wait(page, "(() => { const i = document.querySelector('#preview'); return !i.hidden && i.complete && i.naturalWidth > 0; })()",
          120, "the live preview image")
    _wait(page, "document.querySelector('#job-train').textContent.includes('done')", 120, "training to finish")
    assert page.inner_text("#st-it") not in ("-", "0")
    assert page.query_selector("#loss-plot svg path, #loss-plot svg circle") is not None   # the loss plot (a dot: 1 row)
    t_train = time.time() - t0 - t_extract

    page.click("#btn-convert")
    _wait(page, "document.querySelector('#results video.v-result') !== null", 120, "the converted video")
    _wait(page, "(() => { const v = document.querySelector('#results video.v-result'); return v.readyState >= 2 && v.currentTime > 0; })()",
          30, "the result video to play")
    c0 = page.evaluate("document.querySelector('#results video.v-result').currentTime")
    page.wait_for_timeout(700)
    c1 = page.evaluate("document.querySelector('#results video.v-result').currentTime")
    assert c1 != c0, "the result video does not advance"
    page.click("#results button[data-playboth]")
    _wait(page, "(() => { const v = document.querySelector('#results video.v-source'); return v.readyState >= 2 && v.currentTime > 0; })()",
          30, "the source video to play beside it")
    links = page.eval_on_selector_all("#results .downloads a", "as => as.map(a => a.textContent)")
    assert "Download video" in links and "labels.json" in links and any("manifest" in x for x in links)
    t_convert = time.time() - t0 - t_extract - t_train
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "ui-swap.png"), full_page=True)

    # --- Check: the signed swap, then a tampered copy dropped in as an upload
    from veriswap.demo import flip_media_byte

    out = next((server.workdir / "swaps" / "sample-faces" / "out").glob("*.mp4"))
    tampered = server.root / "astronaut_a2b_tampered.mp4"
    flip_media_byte(out, tampered)
    page.click("#results button[data-checkpath]")
    _wait(page, "location.hash === '#check'", 10, "the Check page")
    _wait(page, "document.querySelectorAll('#check-results .verdict').length >= 1", 60, "the first verdict")
    page.set_input_files("#check-file", str(tampered))
    _wait(page, "document.querySelectorAll('#check-results .verdict').length >= 2", 60, "the second verdict")
    words = page.eval_on_selector_all("#check-results .verdict", "vs => vs.map(v => v.dataset.word)")
    assert words == ["tampered", "signed, AI declared"], words          # newest first
    assert "trusted as declared" in page.inner_text("#check-results .check-card:nth-child(2)")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "ui-check.png"), full_page=True)
    # the full report (the same page `veriswap check --html` writes) opens inside the card
    page.click("#check-results .check-card:nth-child(1) summary")
    frame = page.frame_locator("#check-results .check-card:nth-child(1) iframe")
    assert frame.locator("#verdict").get_attribute("data-word", timeout=15000) == "tampered"
    assert frame.locator("#reasons").inner_text(timeout=5000).count("BMFF") >= 1
    t_check = time.time() - t0 - t_extract - t_train - t_convert
    print(f"\nextract {t_extract:.1f}s, train {t_train:.1f}s, convert {t_convert:.1f}s, checks {t_check:.1f}s")
    assert not page.outside_requests, page.outside_requests             # nothing fetched from anywhere else


def test_other_pages(page, server, shots):
    page.goto(server.url + "#keys")
    _wait(page, "document.querySelectorAll('.keycard').length >= 1", 20, "the signing identity made for the swap")
    assert "Export trust anchor" in page.inner_text("#keys-list")
    assert "PRIVATE KEY" not in page.content()
    page.screenshot(path=str(shots / "ui-keys.png"), full_page=False)
    page.goto(server.url + "#detect")
    _wait(page, "document.querySelectorAll('#ds-real option').length >= 2 && document.querySelectorAll('#ds-fake option').length >= 1",
          20, "the videos to build a detector dataset from")
    fake = page.eval_on_selector_all("#ds-fake option", "os => os.map(o => o.value)")
    assert any(f.endswith("_a2b.mp4") for f in fake) and not any("/faces/" in f for f in fake)
    page.goto(server.url + "#jobs")
    _wait(page, "document.querySelectorAll('#jobs-table tbody tr').length >= 5", 10, "the job list")
    states = page.eval_on_selector_all("#jobs-table tbody .state", "s => s.map(x => x.textContent)")
    assert set(states) == {"done"}, states
    page.screenshot(path=str(shots / "ui-jobs.png"), full_page=False)


def test_traversal_upload_refused_in_browser(page, server):
    page.goto(server.url + "#check")
    res = page.evaluate("""async () => {
        const tok = document.querySelector('meta[name="veriswap-token"]').content, out = [];
        for (const q of ['name=' + encodeURIComponent('../../evil.mp4'), 'dir=..&name=evil.mp4', 'dir=%2Ftmp&name=evil.mp4']) {
          const r = await fetch('/api/upload?' + q, {method: 'POST', headers: {'X-Veriswap-Token': tok}, body: new Blob(['x'])});
          out.push([r.status, (await r.json()).error]);
        }
        return out; }""")
    assert [s for s, _ in res] == [400, 403, 403], res
    assert all("refused" in e for _, e in res)
    assert not (server.workdir.parent / "evil.mp4").exists() and not (server.root / "evil.mp4").exists()


PLOTS_LOADED = """sel => { const im = [...document.querySelectorAll(sel + ' img.plot-img')];
    return im.length && im.every(i => i.complete && i.naturalWidth > 0) ? im.length : 0; }"""


def test_detect_dataset_train_evaluate_on_real_people(page, server, shots):
    """The Detect page end to end on real faces: practice videos from the built-in people (enough footage for
    train, val and test), a dataset, a resnet10t trained from scratch at 64 px, its evaluation with plots."""
    t0 = time.time()
    page.goto(server.url + "#detect")
    page.fill("#pr-people", str(DETECT["people"]))
    page.fill("#pr-frames", str(DETECT["frames"]))
    page.click("#btn-practice")
    n = DETECT["people"]
    _wait(page, f"document.querySelectorAll('#ds-real option:checked').length === {n} && "
                f"document.querySelectorAll('#ds-fake option:checked').length === {n}", 240,
          "the practice videos, chosen for the dataset")
    chosen = page.eval_on_selector_all("#ds-fake option:checked", "os => os.map(o => o.value)")
    assert all(c.startswith("detect/practice/swaps/") and "_as_" in c for c in chosen), chosen
    t_material = time.time() - t0
    page.fill("#ds-frames", str(DETECT["frames"]))
    page.fill("#ds-split", "0.5,0.25,0.25")
    page.click("#btn-ds")
    _wait(page, "document.querySelector('#dt-ds').value === 'detect/datasets/practice' && "
                "document.querySelectorAll('#ds-out tr').length === 4", 180, "the dataset, chosen for training")
    counts = page.inner_text("#ds-out")
    assert "test" in counts and "val" in counts
    t_dataset = time.time() - t0 - t_material

    page.fill("#dt-epochs", str(DETECT["epochs"]))
    page.fill("#dt-size", "64")
    page.fill("#dt-batch", "8")
    page.click("#btn-dt")
    _wait(page, "document.querySelector('#ev-det').value === 'detect/detectors/detector'", 240, "the detector")
    _wait(page, f"({PLOTS_LOADED})('#dt-plot') === 2", 20, "the training-loss and validation plots")
    loss_svg = page.evaluate("decodeURIComponent(document.querySelector('#dt-plot img').src)")
    assert "training loss" in loss_svg and ("<path d=\"M" in loss_svg or "<circle" in loss_svg)
    t_train = time.time() - t0 - t_material - t_dataset

    page.click("#btn-ev")
    _wait(page, f"({PLOTS_LOADED})('#ev-out') === 2", 120, "the ROC and per-video score plots")
    alts = page.eval_on_selector_all("#ev-out img.plot-img", "im => im.map(i => i.alt)")
    assert alts == ["video ROC curve", "per-video fake scores"], alts
    for cell in ("#ev-out .m-frame-auc", "#ev-out .m-video-auc", "#ev-out .m-frame-eer", "#ev-out .m-video-acc_threshold"):
        v = page.inner_text(cell)
        assert 0.0 <= float(v) <= 1.0, (cell, v)
    assert "AUC" in page.inner_text("#ev-out")
    t_eval = time.time() - t0 - t_material - t_dataset - t_train
    print(f"\npractice videos {t_material:.1f}s, dataset {t_dataset:.1f}s, train {t_train:.1f}s, eval {t_eval:.1f}s")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "ui-detect.png"), full_page=True)
    assert not page.outside_requests, page.outside_requests

"""The `veriswap check` HTML report opened in a real browser: headless Chromium (Debian's `chromium`, driven
by Playwright's Python API with executable_path; Playwright's own browser download is not used). Asserts
what a person sees: the verdict text, the number of frames flagged (text and plotted points), that every
picture loaded, that the index table sorts and links to each file's page, and that nothing was fetched.

Screenshots go to a temp folder; with VERISWAP_DOCS_SCREENSHOTS=1 they are written to docs/ (the ones the
README shows)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser_support import launch_browser  # noqa: E402
import check_world as W  # noqa: E402

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """A private $VERISWAP_HOME: no user check.toml is read, results files land in the test's folder."""
    monkeypatch.setenv("VERISWAP_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def browser():
    yield from launch_browser()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One report folder: every kind of file, with the detector, the tags and the pictures."""
    from provenance.tags import tag_video
    from veriswap.check import CheckOptions, check_paths
    from veriswap.check.report_html import write_html
    from veriswap.check.report_json import document

    d = tmp_path_factory.mktemp("check_browser")
    w = W.build(d / "files")
    tag_video(w["swap"], w["tag_key"])                      # the signed swap also carries footage tags,
    shutil.copy(str(w["swap"]) + ".tags", str(w["swap_edit"]) + ".tags")   # so its edit shows all three
    shutil.copy(W.ANCHORS / "CA.jpg", d / "files" / "photos" / "CA.jpg")   # a third-party edit with an ingredient
    det = W.make_detector(d / "det", threshold=0.5, pretrained_note=True)
    opts = CheckOptions(trust_anchors=[str(w["root"]), str(W.ANCHORS / "test_anchors.pem")], tag_key=str(w["tag_key"]),
                        detector=str(det), frames=8, media=True)
    recs, skipped = check_paths([d / "files"], opts, jobs=1)
    # a threshold between the clip's own scores, so the plot shows frames on both sides of it
    edit = next(r for r in recs if r["path"].endswith("grace_swap_edit.mp4"))
    probs = sorted(t["prob"] for t in edit["detector"]["timeline"] if t["prob"] is not None)
    thr = probs[len(probs) // 2]
    import json

    cfg = json.loads((det / "config.json").read_text())
    cfg["threshold"] = thr
    (det / "config.json").write_text(json.dumps(cfg))
    recs, skipped = check_paths([d / "files"], opts, jobs=1)
    pages = write_html(recs, d / "report" / "index.html", document(recs, skipped)["summary"])
    return {"dir": d, "records": recs, "pages": pages, "world": w}


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, requests


def _all_images_loaded(page) -> int:
    imgs = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
    bad = [alt for ok, w, alt in imgs if not ok or w <= 0]
    assert not bad, f"pictures that did not load: {bad}"
    return len(imgs)


def _shot(page, name: str, tmp: Path) -> Path:
    out = (DOCS if os.environ.get("VERISWAP_DOCS_SCREENSHOTS") == "1" else tmp) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    return out


def test_file_page_shows_verdict_flagged_frames_and_pictures(browser, report):
    recs = report["records"]
    i, rec = next((i, r) for i, r in enumerate(recs) if r["path"].endswith("grace_swap_edit.mp4"))
    page_path = report["pages"][1 + i]
    page, requests = _open(browser, page_path)
    assert page.inner_text("#verdict .word").strip().lower() == "tampered"
    assert "tampered" in page.title()
    flagged = rec["detector"]["frames_flagged"]
    assert 0 < flagged < rec["detector"]["frames_sampled"]
    assert page.inner_text("#frames-flagged").strip() == str(flagged)
    assert page.locator("svg.timeline circle.flagged").count() == flagged
    # the tag strip marks the altered frame red, the others green
    assert page.locator("svg.strip rect[data-status='N']").count() >= 1
    assert page.locator("#tags").inner_text().count("altered") >= 1
    n = _all_images_loaded(page)
    top = len(rec["media"]["top_frames"])
    assert top >= 1 and n >= 2 * top                       # each top frame: the frame and its heatmap
    assert page.locator("#c2pa").inner_text().count("bmffHash.mismatch") >= 1
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
    shot = _shot(page, "check-report-file.png", report["dir"])
    assert shot.stat().st_size > 20_000
    page.close()


def test_index_page_sorts_links_and_loads_every_picture(browser, report):
    page, requests = _open(browser, report["pages"][0])
    recs = report["records"]
    rows = page.locator("#files tbody tr")
    assert rows.count() == len(recs)
    assert page.inner_text("#trusted-count").strip() == str(sum(r["verdict"]["trusted"] for r in recs))
    words = lambda: [rows.nth(k).locator("td").nth(1).inner_text().strip() for k in range(rows.count())]  # noqa: E731
    page.click("#files th:nth-child(2)")
    assert words() == sorted(words())
    page.click("#files th:nth-child(2)")
    assert words() == sorted(words(), reverse=True)
    _all_images_loaded(page)
    shot = _shot(page, "check-report-index.png", report["dir"])
    assert shot.stat().st_size > 10_000
    # every row opens its file page, whose verdict is the row's
    for k in range(rows.count()):
        word = rows.nth(k).locator("td").nth(1).inner_text().strip()
        href = rows.nth(k).locator("a").get_attribute("href")
        sub, req2 = _open(browser, report["pages"][0].parent / href)
        assert sub.inner_text("#verdict .word").strip() == word
        _all_images_loaded(sub)
        if href.endswith("CA.jpg.html"):             # the ingredient's thumbnail in the manifest tree
            assert sub.locator("#c2pa .tree img").count() >= 2
            assert "A.jpg" in sub.inner_text("#c2pa")
        requests += req2
        sub.close()
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
    page.close()

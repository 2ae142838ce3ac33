"""The HTML report of `veriswap check --html OUT.html`: self-contained pages (inline CSS, a few lines of
inline JS for table sorting, plots as inline SVG, pictures as data: URIs) that open offline and fetch
nothing: no network, no CDN, no web fonts.

One file: OUT.html holds its page. Several files: OUT.html is an index (a sortable table, one row per file)
and OUT_files/NNNN-NAME.html one page per file, linked from it.

A page shows, top to bottom: the verdict (word, headline, trusted or not, exit code) and any conflicts,
the reasons, a preview, the C2PA manifest tree (ingredients with their thumbnails), the footage-tag status
strip (one mark per frame: authentic / altered / missing / inserted), and the detector's timeline with
its threshold, the frames above it, and the top frames beside their Grad-CAM heatmaps.
"""
from __future__ import annotations

import datetime as dt
import html
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .html_style import CSS, SORT_JS
from .report_json import SCHEMA_VERSION

E = html.escape

STRIP_COLORS = {".": "#2e9e56", "N": "#d93025", "M": "#8a8f98", "X": "#f29900"}
STRIP_WORDS = {".": "authentic", "N": "altered", "M": "missing", "X": "inserted / out of order"}


def verdict_class(v: Dict[str, Any]) -> str:
    if v.get("exit_code") == 2:
        return "v-err"
    if v.get("trusted"):
        return "v-ok"
    if (v.get("word") in ("tampered", "signature not valid") or "likely manipulated" in v.get("headline", "")
            or str(v.get("word", "")).startswith("AI swap (watermark)")):
        return "v-bad"
    return "v-warn"


def _page(title: str, body: str, script: str = "", wide: bool = False) -> str:
    # the Content-Security-Policy forbids every fetch: a page that tried to load anything would show it broken
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
            f"<meta name=viewport content=\"width=device-width,initial-scale=1\"><title>{E(title)}</title>"
            f"<style>{CSS}</style></head><body><main{' class=wide' if wide else ''}>{body}"
            f"<footer>veriswap check - report schema {SCHEMA_VERSION} - made "
            f"{dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()} - this page loads nothing "
            f"from the network</footer></main>{f'<script>{script}</script>' if script else ''}</body></html>")


def _kv(rows: Sequence[tuple]) -> str:
    return "<table class=kv>" + "".join(f"<tr><td>{E(str(k))}</td><td>{v}</td></tr>" for k, v in rows
                                        if v not in (None, "")) + "</table>"


def _img(uri: Optional[str], alt: str, cls: str = "") -> str:
    if not uri or not uri.startswith("data:image/"):
        return ""
    return f'<img src="{uri}" alt="{E(alt)}"{f" class={cls}" if cls else ""}>'


# ---- pieces ---------------------------------------------------------------------------------------

def _tree_html(node: Optional[Dict[str, Any]], rel: str = "this file") -> str:
    if not node:
        return ""
    acts = ", ".join(a.get("action", "?").replace("c2pa.", "") + (
        f" ({a['digitalSourceType'].rsplit('/', 1)[-1]})" if a.get("digitalSourceType") else "")
        for a in node.get("actions") or [])
    info = [f"<div class=t>{E(node.get('title') or '(untitled)')} <span class=small>{E(rel)}</span></div>",
            f"<div class=small>signed by {E(node.get('signer') or '?')}"
            f"{' at ' + E(node['signed_at']) if node.get('signed_at') else ''}"
            f"{' - made with ' + E(node['generator']) if node.get('generator') else ''}</div>"]
    if acts:
        info.append(f"<div class=small>actions: {E(acts)}</div>")
    out = [f"<li><div class=node>{_img(node.get('thumbnail'), 'manifest thumbnail')}<div>{''.join(info)}</div></div>"]
    ings = node.get("ingredients") or []
    if ings:
        out.append("<ul>")
        for ing in ings:
            sub = ing.get("manifest")
            if sub:
                sub = dict(sub, thumbnail=sub.get("thumbnail") or ing.get("thumbnail"))
                out.append(_tree_html(sub, f"ingredient ({ing.get('relationship') or '?'})"))
            else:
                out.append(f"<li><div class=node>{_img(ing.get('thumbnail'), 'ingredient thumbnail')}<div>"
                           f"<div class=t>{E(ing.get('title') or '(untitled)')} <span class=small>ingredient "
                           f"({E(ing.get('relationship') or '?')}, {E(ing.get('format') or '?')})</span></div>"
                           f"<div class=small>no manifest of its own</div></div></div></li>")
        out.append("</ul>")
    out.append("</li>")
    return "".join(out)


def _c2pa_section(c2: Dict[str, Any], tree: Optional[Dict[str, Any]]) -> str:
    st = c2.get("status")
    if st != "checked":
        why = {"absent": "No C2PA manifest in this file.", "unsupported": f"Not read: {c2.get('detail', '')}"}
        return f"<section id=c2pa><h2>C2PA manifest</h2><p>{E(why.get(st, str(c2.get('detail') or st)))}</p></section>"
    rep = c2.get("report") or {}
    state = c2.get("state")
    pill = {"trusted": "p-ok", "valid-untrusted": "p-warn", "invalid": "p-bad"}.get(state, "p-none")
    rows = [("state", f"<span class='pill {pill}'>{E(str(state))}</span> <span class=small>(c2pa: "
                      f"{E(str(rep.get('c2pa_state')))})</span>"),
            ("signer", E(c2.get("signer") or "")),
            ("certificate issued by", E(c2.get("issuer") or "")),
            ("signed at", E(c2.get("signed_at") or "")),
            ("made with", E(str(rep.get("claim_generator") or ""))),
            ("AI declared", ("yes: " + E(c2.get("ai_words") or "") + f" <span class='mono small'>"
                             f"{E(str(c2.get('ai_declaration')))}</span>") if c2.get("ai_declared") else "no"),
            ("trust anchors given", E(str(rep.get("trust_anchors", "")))),
            ("manifests in the file", E(str(rep.get("manifests", ""))))]
    for i in c2.get("identities") or []:
        rows.append(("CAWG identity", f"{E(i.get('actor') or i.get('organization') or '?')} - credential "
                                      f"{E(str(i.get('credential')))} <span class='mono small'>{E(str(i.get('type')))}</span>"))
    for w in c2.get("warnings") or []:
        rows.append(("warning", E(w)))
    swap = rep.get("swap")
    if isinstance(swap, dict):
        rows.append(("face swap facts", "<span class=mono>" + E(", ".join(f"{k}={v}" for k, v in swap.items()
                                                                          if k != "extra")) + "</span>"))
    fails = c2.get("failures") or []
    fail_html = ("<h3 style='font-size:15px'>Validation failures</h3><ul class=reasons>" + "".join(
        f"<li>{E(f.get('words') or '')} <span class='mono small'>{E(f.get('code') or '')}</span></li>"
        for f in fails) + "</ul>") if fails else ""
    tree_html = (f"<h3 style='font-size:15px'>Manifest tree</h3><ul class=tree style='padding-left:0'>"
                 f"{_tree_html(tree)}</ul>") if tree else ""
    return f"<section id=c2pa><h2>C2PA manifest</h2>{_kv(rows)}{fail_html}{tree_html}</section>"


def _strip_svg(strip: str, width: int = 960, height: int = 26) -> str:
    n = len(strip)
    if not n:
        return ""
    rank = {".": 0, "X": 1, "M": 2, "N": 3}
    bins = min(n, width)
    rects = []
    for b in range(bins):
        lo, hi = b * n // bins, max(b * n // bins + 1, (b + 1) * n // bins)
        ch = max(strip[lo:hi], key=lambda c: rank.get(c, 0))
        x, w = b * width / bins, width / bins
        rects.append(f'<rect x="{x:.2f}" y="0" width="{w + 0.3:.2f}" height="{height}" fill="{STRIP_COLORS.get(ch, "#000")}"'
                     f' data-status="{E(ch)}"><title>{E(STRIP_WORDS.get(ch, ch))}: events {lo}-{hi - 1}</title></rect>')
    return (f'<svg class=strip viewBox="0 0 {width} {height}" width="100%" height="{height}" '
            f'preserveAspectRatio="none" role="img" aria-label="tag status per frame">{"".join(rects)}</svg>')


def _tags_section(tg: Dict[str, Any]) -> str:
    st = tg.get("status")
    if st != "checked":
        return f"<section id=tags><h2>Footage tags</h2><p>{E(str(tg.get('detail') or st))}</p></section>"
    counts = tg.get("counts") or {}
    pill = "p-ok" if tg.get("ok") else "p-bad"
    legend = "".join(f"<span><i class=sw style='background:{STRIP_COLORS[c]}'></i>{STRIP_WORDS[c]}: {counts.get(c, 0)}</span>"
                     for c in ".NMX")
    flagged = tg.get("flagged") or []
    fl = ""
    if flagged:
        fl = ("<table><tr><th>position</th><th>video frame</th><th>status</th></tr>" + "".join(
            f"<tr><td>{f['position']}</td><td>{'' if f.get('video_frame') is None else f['video_frame']}</td>"
            f"<td>{E(STRIP_WORDS.get(f['status'], f['status']))}</td></tr>" for f in flagged[:50]) + "</table>")
        if (tg.get("flagged_total") or 0) > 50:
            fl += f"<p class=small>... {tg['flagged_total'] - 50} more</p>"
    probs = "".join(f"<li>{E(p)}</li>" for p in tg.get("problems") or [])
    return (f"<section id=tags><h2>Footage tags</h2>"
            + _kv([("result", f"<span class='pill {pill}'>{'all frames authentic' if tg.get('ok') else 'FAIL'}</span>"),
                   ("tag file", f"<span class=mono>{E(os.path.basename(tg.get('path') or ''))}</span>"),
                   ("mode", E(str(tg.get("mode")))),
                   ("frames tagged / in the video", f"{tg.get('frames_tagged')} / {tg.get('frames_video')}")])
            + f"<p class=small style='margin:10px 0 4px'>status per frame (left = start)</p>{_strip_svg(tg.get('strip') or '')}"
            + f"<div class=legend>{legend}</div>"
            + (f"<ul class=reasons>{probs}</ul>" if probs else "") + fl + "</section>")


def _timeline_svg(d: Dict[str, Any], width: int = 960, height: int = 240) -> str:
    tl = d.get("timeline") or []
    if not tl:
        return ""
    ml, mr, mt, mb = 44, 12, 12, 34
    W, H = width - ml - mr, height - mt - mb
    t_max = max((float(p.get("time") or 0) for p in tl), default=0.0) or 1.0
    thr = float(d.get("threshold") or 0.5)

    def X(t: float) -> float:
        return ml + W * (t / t_max if t_max else 0)

    def Y(p: float) -> float:
        return mt + H * (1 - p)
    parts = [f'<rect x="{ml}" y="{mt}" width="{W}" height="{H}" fill="#fbfcfd" stroke="#ccd"/>']
    for p in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<line x1="{ml}" x2="{ml + W}" y1="{Y(p):.1f}" y2="{Y(p):.1f}" stroke="#eceef1"/>'
                     f'<text x="{ml - 6}" y="{Y(p) + 4:.1f}" font-size="11" text-anchor="end" fill="#555">{p:g}</text>')
    for k in range(6):
        t = t_max * k / 5
        parts.append(f'<text x="{X(t):.1f}" y="{mt + H + 16}" font-size="11" text-anchor="middle" fill="#555">{t:.1f}s</text>')
    parts.append(f'<text x="{ml + W / 2}" y="{height - 4}" font-size="11" text-anchor="middle" fill="#555">time</text>'
                 f'<text x="12" y="{mt + H / 2}" font-size="11" text-anchor="middle" fill="#555" '
                 f'transform="rotate(-90 12 {mt + H / 2})">P(fake)</text>')
    parts.append(f'<line x1="{ml}" x2="{ml + W}" y1="{Y(thr):.1f}" y2="{Y(thr):.1f}" stroke="#d93025" '
                 f'stroke-dasharray="6 4"/><text x="{ml + W - 4}" y="{Y(thr) - 4:.1f}" font-size="11" '
                 f'text-anchor="end" fill="#d93025">threshold {thr:.2f}</text>')
    pts = [(float(p.get("time") or 0), p["prob"], p["frame"]) for p in tl if p.get("prob") is not None]
    if len(pts) > 1:
        parts.append('<polyline fill="none" stroke="#0b57d0" stroke-width="1.6" points="'
                     + " ".join(f"{X(t):.1f},{Y(p):.1f}" for t, p, _ in pts) + '"/>')
    for t, p, f in pts:
        hot = p >= thr
        parts.append(f'<circle cx="{X(t):.1f}" cy="{Y(p):.1f}" r="{4 if hot else 3}" fill="{"#d93025" if hot else "#0b57d0"}"'
                     f' class="{"flagged" if hot else "pt"}"><title>frame {f} at {t:.2f}s: {p:.3f}</title></circle>')
    for p in tl:
        if p.get("prob") is None:
            parts.append(f'<line x1="{X(float(p.get("time") or 0)):.1f}" x2="{X(float(p.get("time") or 0)):.1f}" '
                         f'y1="{mt + H - 6}" y2="{mt + H}" stroke="#8a8f98"><title>frame {p["frame"]}: no face</title></line>')
    return (f'<svg class=timeline viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="detector probability over time">{"".join(parts)}</svg>')


def _detector_section(d: Dict[str, Any], media: Dict[str, Any]) -> str:
    st = d.get("status")
    if st != "checked":
        return f"<section id=detector><h2>Detector</h2><p>{E(str(d.get('detail') or st))}</p></section>"
    v = d.get("verdict")
    pill = {"FAKE": "p-bad", "REAL": "p-ok"}.get(v, "p-warn")
    rows = [("opinion", f"<span class='pill {pill}'>{E(str(v))}</span> <span class=small>{E(d.get('basis') or '')}</span>"),
            ("score / threshold", f"{d.get('score')} / {d.get('threshold')} <span class=small>(rule {E(str(d.get('rule')))})</span>"),
            ("frames flagged", f"<span id=frames-flagged>{d.get('frames_flagged')}</span> of {d.get('frames_sampled')} "
                               f"sampled ({d.get('frames_total')} in the file)"),
            ("detector", f"<span class=mono>{E(os.path.basename(str(d.get('detector') or '')))}</span> ({E(str(d.get('arch')))})")]
    if d.get("warnings"):
        rows.append(("warnings", E("; ".join(d["warnings"]))))
    cards = []
    for fr in (media or {}).get("top_frames") or []:
        cards.append(f"<div class=card>{_img(fr.get('thumbnail'), 'frame ' + str(fr['frame']))}"
                     f"{_img(fr.get('heatmap'), 'Grad-CAM heatmap of frame ' + str(fr['frame']), 'heat')}"
                     f"<div class=small>frame {fr['frame']} at {fr['time']:.2f}s, face track {fr['track']}: "
                     f"P(fake) {fr['prob']:.3f}</div></div>")
    top = (f"<h3 style='font-size:15px'>Most suspicious frames (face, then the face with its Grad-CAM heatmap: "
           f"red = what pushed the detector towards fake)</h3><div class=grid>{''.join(cards)}</div>") if cards else ""
    return f"<section id=detector><h2>Detector</h2>{_kv(rows)}{_timeline_svg(d)}{top}</section>"


# ---- pages -------------------------------------------------------------------------------------------

def _watermark_section(wm: Dict[str, Any]) -> str:
    """One line: the watermark found (payload, z, frames) and the manifest recovered for it, or why not."""
    st = wm.get("status")
    if st is None or st == "not-applicable":
        return ""
    if st != "checked":
        line = f"not searched: {wm.get('detail') or st}"
    elif not wm.get("found"):
        line = f"no watermark in {wm.get('frames_total')} frames searched (best z {wm.get('z')})"
    else:
        line = (f"payload <span class=mono>{E(str(wm.get('payload')))}</span>, z {E(str(wm.get('z')))}, found in "
                f"{E(str(wm.get('frames_found')))} of {E(str(wm.get('frames_total')))} frames - ")
        rc = wm.get("recovered")
        if rc is None:
            line += f"no manifest for it in the store <span class=mono>{E(str(wm.get('store')))}</span>"
        else:
            line += (f"manifest recovered ({E(str(rc.get('state')))}): signed by {E(str(rc.get('signer') or '?'))} at "
                     f"{E(str(rc.get('signed_at') or '?'))}, model <span class=mono>{E(str(rc.get('model') or '?'))}"
                     f"</span>, source {E(str(rc.get('source') or '?'))}")
        return f"<section id=watermark><h2>Watermark</h2><p>{line}</p></section>"
    return f"<section id=watermark><h2>Watermark</h2><p>{E(line)}</p></section>"


def file_page(rec: Dict[str, Any], index_href: Optional[str] = None) -> str:
    v = rec["verdict"]
    media = rec.get("media") or {}
    name = os.path.basename(rec["path"])
    conflicts = "".join(f"<div class=conflict><b>Conflict:</b> {E(c)}</div>" for c in v.get("conflicts") or [])
    reasons = "".join(f"<li>{E(r.strip(' -'))}</li>" for r in v.get("reasons") or [])
    back = f"<p><a href=\"{E(index_href)}\">&larr; all files</a></p>" if index_href else ""
    body = (f"{back}<h1>{E(name)}</h1>"
            f"<div id=verdict class='verdict {verdict_class(v)}' data-word=\"{E(v['word'])}\" data-exit=\"{v['exit_code']}\">"
            f"<div class=word>{E(v['word'])}</div><div class=headline>{E(v['headline'])}</div>"
            f"<div class=meta>{'trusted as declared' if v['trusted'] else 'not trusted'} - exit code {v['exit_code']}"
            f"</div></div>{conflicts}"
            f"<section id=reasons><h2>Why</h2><ul class=reasons>{reasons}</ul>"
            f"{_img(media.get('preview'), 'preview of ' + name, 'preview')}"
            f"<p class='small mono'>{E(rec['path'])} - {E(rec.get('kind') or '')}"
            f"{' - ' + format(rec['size'], ',') + ' bytes' if rec.get('size') is not None else ''}"
            f" - checked in {rec.get('seconds', 0):.2f}s</p></section>")
    if not rec.get("error"):
        body += (_c2pa_section(rec.get("c2pa") or {}, media.get("manifest_tree"))
                 + _watermark_section(rec.get("watermark") or {})
                 + _tags_section(rec.get("tags") or {}) + _detector_section(rec.get("detector") or {}, media))
    return _page(f"{v['word']}: {name}", body)


def _cell(text: str, sort: Optional[Any] = None, raw: bool = False) -> str:
    s = f' data-sort="{E(str(sort))}"' if sort is not None else ""
    return f"<td{s}>{text if raw else E(text)}</td>"


def index_page(records: List[Dict[str, Any]], links: List[str], summary: Dict[str, Any]) -> str:
    rows = []
    paths = [os.path.abspath(r["path"]) for r in records]
    base = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    for rec, href in zip(records, links):
        shown = os.path.relpath(os.path.abspath(rec["path"]), base) if base else rec["path"]
        v, c2, tg, d = rec["verdict"], rec.get("c2pa") or {}, rec.get("tags") or {}, rec.get("detector") or {}
        tags = ("ok" if tg.get("ok") else f"FAIL ({tg.get('flagged_total')})") if tg.get("status") == "checked" \
            else (tg.get("status") or "")
        det = f"{d.get('verdict')} {d.get('score')}" if d.get("status") == "checked" else (d.get("status") or "")
        rows.append(
            "<tr>" + _cell(f"<a href=\"{E(href)}\" title=\"{E(rec['path'])}\">{E(shown)}</a>", shown, raw=True)
            + _cell(f"<span class='pill {verdict_class(v).replace('v-', 'p-').replace('p-err', 'p-none')}'>"
                    f"{E(v['word'])}</span>", v["word"], raw=True)
            + _cell(v["headline"]) + _cell(str(c2.get("state") or c2.get("status") or ""))
            + _cell(c2.get("signer") or "") + _cell("yes" if c2.get("ai_declared") else "")
            + _cell(tags) + _cell(det, d.get("score") if d.get("status") == "checked" else -1)
            + _cell(str(d.get("frames_flagged") if d.get("status") == "checked" else ""),
                    d.get("frames_flagged") if d.get("status") == "checked" else -1)
            + _cell(str(v["exit_code"]), v["exit_code"]) + "</tr>")
    counts = " ".join(f"<span class='pill p-none' style='background:#44505e'>{E(w)}: {n}</span>"
                      for w, n in (summary.get("by_word") or {}).items())
    skipped = summary.get("skipped") or {}
    sk = ("<p class=small>skipped: " + E("; ".join(f"{n} {w}" for w, n in skipped.items())) + "</p>") if skipped else ""
    body = (f"<h1>veriswap check: {len(records)} files</h1>"
            f"<p class='small mono'>in {E(base)}</p><section id=summary>"
            f"<p>{counts}</p><p><b id=trusted-count>{summary.get('trusted', 0)}</b> trusted as declared, "
            f"<b>{len(records) - summary.get('trusted', 0)}</b> not. Click a column to sort; click a file for its "
            f"full report.</p>{sk}</section>"
            "<section><table class=sortable id=files><thead><tr><th>file</th><th>verdict</th><th>headline</th>"
            "<th>C2PA</th><th>signer</th><th>AI declared</th><th>tags</th><th>detector</th><th>frames flagged</th>"
            f"<th>exit</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>")
    return _page(f"veriswap check: {len(records)} files", body, SORT_JS, wide=True)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "file"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_html(records: List[Dict[str, Any]], out: Path, summary: Dict[str, Any], index: Optional[bool] = None) -> List[Path]:
    """Write the report; returns the pages written (the first is OUT.html). `index`: force (or not) an
    index page; default: an index when there is more than one file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if index is None:
        index = len(records) != 1
    if not index:
        _atomic_write(out, file_page(records[0]))
        return [out]
    folder = out.with_name(out.stem + "_files")
    folder.mkdir(exist_ok=True)
    pages, links = [], []
    for i, rec in enumerate(records, 1):
        p = folder / f"{i:04d}-{_safe(os.path.basename(rec['path']))}.html"
        _atomic_write(p, file_page(rec, index_href=f"../{out.name}"))
        pages.append(p)
        links.append(f"{folder.name}/{p.name}")
    _atomic_write(out, index_page(records, links, summary))
    return [out, *pages]

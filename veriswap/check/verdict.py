"""One verdict from the evidence, in words a newsroom uses, with its reasons and any conflicts named.

Words (`verdict.word`), in the order the rules try them:

| word                       | when                                                                  | exit |
|----------------------------|-----------------------------------------------------------------------|------|
| `tampered`                 | the C2PA hash of the bytes no longer matches, the manifest is broken, or footage tags flag frames (which ones: `tags.flagged`) | 1 |
| `signature not valid`      | a manifest that fails for another reason (revoked, expired or unusable certificate, bad claim signature) | 1 |
| `signed, AI declared`      | an intact manifest declaring AI-generated or AI-composited content     | 0 if the signer is trusted, else 1 |
| `signed capture`           | an intact manifest without an AI declaration, or footage tags that verify on every frame | 0 if trusted, else 1 |
| `AI swap (watermark): manifest recovered` | no manifest, but veriswap's invisible watermark is found and the manifest it names, recovered from the store, verifies (headline: signer, time, model, source) | 1 |
| `AI swap (watermark): manifest not valid` | watermark found; the stored manifest for it does not verify or does not name it | 1 |
| `AI swap (watermark), manifest not in store` | watermark found; no manifest for it in the store                  | 1 |
| `unsigned + detector result` | no manifest, no tags; the detector gives FAKE or REAL                | 1 |
| `cannot tell`              | no usable evidence, or only an UNCERTAIN detector                     | 1 |
| `unreadable`               | the file could not be read at all                                     | 2 |

Exit 0 means "trusted as declared": a signature that chains to an anchor you gave (or footage tags that
verify with your key) vouches for exactly these bytes, whatever they declare. A detector never overrides a
trusted signature: its disagreement is listed under `conflicts` and shown beside the verdict.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .evidence import TAMPER_CODES

WM_RECOVERED = "AI swap (watermark): manifest recovered"
WM_INVALID = "AI swap (watermark): manifest not valid"
WM_NOT_IN_STORE = "AI swap (watermark), manifest not in store"
WORDS = ("signed capture", "signed, AI declared", "tampered", "signature not valid",
         WM_RECOVERED, WM_INVALID, WM_NOT_IN_STORE, "unsigned + detector result", "cannot tell", "unreadable")
STATUS_WORDS = {".": "authentic", "N": "altered", "M": "missing", "X": "inserted or out of order"}


def _ranges(xs: List[int]) -> str:
    out, start, prev = [], None, None
    for x in sorted(set(xs)):
        if start is None:
            start = prev = x
        elif x == prev + 1:
            prev = x
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = x
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(out)


def _tag_frames(tg: Dict[str, Any]) -> str:
    """'altered frame 7; missing tagged frames at 12-13' from the tag check's flagged list."""
    by: Dict[str, List[int]] = {}
    for f in tg.get("flagged") or []:
        idx = f.get("video_frame") if f.get("video_frame") is not None else f.get("position")
        by.setdefault(f["status"], []).append(int(idx))
    parts = []
    for st in ("N", "M", "X"):
        if st in by:
            n = len(by[st])
            noun = "frame" if n == 1 else "frames"
            where = "at position " if st == "M" else ""
            parts.append(f"{STATUS_WORDS[st]} {noun} {where}{_ranges(by[st])}")
    return "; ".join(parts)


def _c2pa_reasons(c2: Dict[str, Any], state: Any) -> List[str]:
    reasons: List[str] = []
    if state:
        who = c2.get("signer") or "unknown signer"
        if c2.get("issuer"):
            who += f" (certificate issued by {c2['issuer']})"
        line = {"trusted": f"C2PA: intact, signed by {who}, trusted",
                "valid-untrusted": (f"C2PA: intact, signed by {who}, trusted, but not everything in the manifest "
                                    "is vouched for (an ingredient's signer or an identity credential)"
                                    if c2.get("signer_trust") == "trusted" else
                                    f"C2PA: intact, signed by {who}, but the signer does not chain to any trust "
                                    "anchor given (--trust-anchor / --trust-list)"),
                "invalid": f"C2PA: NOT valid (signed by {who})"}.get(state, f"C2PA: {state}")
        reasons.append(line)
        for f in c2.get("failures") or []:
            if f.get("code") != "signingCredential.untrusted" or state == "invalid":
                reasons.append(f"  - {f.get('words') or f.get('code')} [{f.get('code')}]")
        if c2.get("ai_declared"):
            reasons.append(f"C2PA: declares {c2.get('ai_words') or 'AI-generated content'} "
                           f"({c2.get('ai_declaration')})")
        for i in c2.get("identities") or []:
            reasons.append(f"C2PA identity (CAWG): {i.get('actor') or i.get('organization') or '?'} - credential "
                           f"{i.get('credential')}")
        for w in c2.get("warnings") or []:
            reasons.append(f"C2PA warning: {w}")
    elif c2.get("status") == "absent":
        reasons.append("C2PA: no manifest" + (f" in the file; it points to one at {c2['remote_manifest']}, not "
                                              "fetched (--allow-remote fetches it)" if c2.get("remote_manifest") else ""))
    elif c2.get("status"):
        reasons.append(f"C2PA: not checked ({c2.get('detail', c2['status'])})")
    return reasons


def _tags_and_detector_reasons(tg: Dict[str, Any], tags_checked: bool, tags_ok: bool, dt: Dict[str, Any],
                               det: Any) -> List[str]:
    reasons: List[str] = []
    if tags_checked:
        if tags_ok:
            reasons.append(f"footage tags: all {tg.get('frames_tagged')} tagged frames authentic ({tg.get('mode')})")
        else:
            where = _tag_frames(tg)
            reasons.append("footage tags: FAIL" + (f": {where}" if where else ""))
            reasons.extend(f"  - {p}" for p in (tg.get("problems") or [])[:5])
    elif tg.get("status") in ("no-key", "error"):
        reasons.append(f"footage tags: {tg.get('detail')}")
    if det:
        reasons.append(f"detector: {det} (score {dt.get('score')}, threshold {dt.get('threshold')}; "
                       f"{dt.get('frames_flagged')} of {dt.get('frames_sampled')} sampled frames above it)"
                       + (f" - {dt['basis']}" if det == "UNCERTAIN" and dt.get("basis") else ""))
    elif dt.get("status") in ("no-face", "error"):
        reasons.append(f"detector: {dt.get('detail')}")
    return reasons


def _tampered(c2: Dict[str, Any], tg: Dict[str, Any], state: Any, c2_tampered: bool, tags_ok: bool,
              tags_bad: bool, conflicts: List[str]) -> str:
    """The headline of a tampered file; adds the conflicts between the pieces to `conflicts`."""
    what = []
    if c2_tampered:
        hit = next((f for f in c2.get("failures") or [] if any(t in str(f.get("code")) for t in TAMPER_CODES)), {})
        what.append(hit.get("words") or "bytes changed after signing")
    if tags_bad:
        where = _tag_frames(tg)
        what.append(where or "footage tags do not verify")
    if tags_ok and c2_tampered:
        conflicts.append("the footage tags verify every frame, but the C2PA hash does not match: the change is "
                         "outside the tagged video frames (audio, metadata or container)")
    if state in ("trusted", "valid-untrusted") and tags_bad:
        conflicts.append("the C2PA manifest is intact, but the footage tags flag frames: the frames differ from "
                         "what the camera tagged (edited before signing?)")
    return "tampered: " + "; ".join(what)


def _signed(c2: Dict[str, Any], dt: Dict[str, Any], state: Any, det: Any, conflicts: List[str]
            ) -> Tuple[str, bool, str]:
    """(word, trusted, headline) of an intact C2PA manifest; adds the detector's disagreement to `conflicts`."""
    trusted = state == "trusted"
    word = "signed, AI declared" if c2.get("ai_declared") else "signed capture"
    headline = word + ("" if trusted else " - signer NOT trusted" if c2.get("signer_trust") != "trusted"
                       else " - not fully trusted (an ingredient or identity credential is not vouched for)")
    if det == "FAKE" and not c2.get("ai_declared"):
        conflicts.append(f"the detector calls this likely manipulated (score {dt.get('score')}), but the "
                         f"signature says it is not AI-made{' and it is trusted' if trusted else ''}: the "
                         "signature vouches for these exact bytes and who signed them; a detector can be wrong "
                         "- check the signer")
    if det == "REAL" and c2.get("ai_declared"):
        conflicts.append("the signer declares AI-made content, but the detector found no manipulation "
                         f"(score {dt.get('score')}): the declaration stands")
    return word, trusted, headline


def _watermark_reasons(wm: Dict[str, Any]) -> List[str]:
    if wm.get("status") != "checked":
        return [f"watermark: not searched ({wm['detail']})"] if wm.get("status") in ("unsupported", "error") else []
    if not wm.get("found"):
        return [f"watermark: none found in {wm.get('frames_total')} frames searched (best z {wm.get('z')})"]
    out = [f"watermark: veriswap payload {wm.get('payload')} (z {wm.get('z')}, found in {wm.get('frames_found')} "
           f"of {wm.get('frames_total')} frames searched)"]
    rc = wm.get("recovered")
    if rc is None:
        out.append(f"watermark: no manifest for {wm.get('payload')} in the store {wm.get('store')} (import the "
                   "signer's store with `veriswap provenance store import`)")
        return out
    words = {"intact-trusted": "signature valid, signer trusted",
             "intact-untrusted": "signature valid, signer not trusted (no anchor given for it)",
             "invalid": "manifest NOT valid"}.get(rc.get("state"), str(rc.get("state")))
    out.append(f"watermark: manifest {rc.get('manifest_label')} recovered from the store: {words}")
    if rc.get("ai_declared"):
        out.append(f"watermark: the recovered manifest declares AI-made content ({rc.get('ai_declaration')})")
    if rc.get("content_changed"):
        out.append("watermark: the pixels/bytes differ from what was signed (expected for a stripped or re-encoded "
                   "copy: the watermark, not the hash, binds it)")
    out.extend(f"  - {p}" for p in rc.get("problems") or [])
    return out


def _watermark(wm: Dict[str, Any], det: Any, tags_ok: bool, conflicts: List[str]) -> Tuple[str, str]:
    """(word, headline) of a file without a manifest whose pictures carry veriswap's watermark."""
    rc = wm.get("recovered")
    if rc is None:
        word = WM_NOT_IN_STORE
        headline = (f"{word}: veriswap watermark {wm.get('payload')}, but no manifest for it in the store "
                    f"{wm.get('store')}")
    elif rc.get("verified"):
        word = WM_RECOVERED
        headline = (f"veriswap swap, manifest recovered from the store: signed by {rc.get('signer') or '?'} at "
                    f"{rc.get('signed_at') or '?'}, model {rc.get('model') or '?'}, source {rc.get('source') or '?'}"
                    + ("" if rc.get("trusted") else " (signer not trusted)")
                    + "; this file itself is not signed as delivered")
    else:
        word = WM_INVALID
        headline = (f"{word}: veriswap watermark {wm.get('payload')}; the stored manifest for it does not verify"
                    + (f" ({rc['problems'][0]})" if rc.get("problems") else ""))
    if det == "REAL":
        conflicts.append("the detector found no manipulation, but the file carries veriswap's swap watermark: "
                         "the watermark stands (a detector can miss a good swap)")
    if tags_ok:
        conflicts.append("the footage tags verify every frame, but the pictures carry veriswap's swap watermark")
    return word, headline


def decide(ev: Dict[str, Any]) -> Dict[str, Any]:
    """The verdict dict: word, headline, trusted, exit_code, reasons, conflicts."""
    if ev.get("error"):
        return {"word": "unreadable", "headline": f"unreadable: {ev['error']}", "trusted": False, "exit_code": 2,
                "reasons": [ev["error"]], "conflicts": []}
    c2, tg, dt = ev.get("c2pa") or {}, ev.get("tags") or {}, ev.get("detector") or {}
    conflicts: List[str] = []
    state = c2.get("state") if c2.get("status") == "checked" else None
    tags_checked = tg.get("status") == "checked"
    tags_ok = tags_checked and bool(tg.get("ok"))
    det = dt.get("verdict") if dt.get("status") == "checked" else None

    # what each piece says, one line each
    wm = ev.get("watermark") or {}
    reasons = (_c2pa_reasons(c2, state) + _watermark_reasons(wm)
               + _tags_and_detector_reasons(tg, tags_checked, tags_ok, dt, det))
    wm_found = c2.get("status") == "absent" and wm.get("status") == "checked" and bool(wm.get("found"))

    c2_tampered = state == "invalid" and bool(c2.get("tampered"))
    tags_bad = tags_checked and not tags_ok
    if c2_tampered or tags_bad:
        word, trusted = "tampered", False
        headline = _tampered(c2, tg, state, c2_tampered, tags_ok, tags_bad, conflicts)
    elif state == "invalid":
        word, trusted = "signature not valid", False
        headline = "signature not valid: " + (", ".join(f.get("code") or "" for f in c2.get("failures") or [])
                                              or "the manifest does not validate")
    elif state in ("trusted", "valid-untrusted"):
        word, trusted, headline = _signed(c2, dt, state, det, conflicts)
    elif wm_found:
        trusted = False                 # the file itself is not signed as delivered
        word, headline = _watermark(wm, det, tags_ok, conflicts)
    elif tags_ok:
        word, trusted = "signed capture", True
        headline = "signed capture (footage tags verify every frame)"
        if det == "FAKE":
            conflicts.append(f"the detector calls this likely manipulated (score {dt.get('score')}), but the "
                             "footage tags verify every frame with your key: the frames are the camera's")
    elif det in ("FAKE", "REAL"):
        word, trusted = "unsigned + detector result", False
        headline = "unsigned; detector: " + ("likely manipulated" if det == "FAKE" else "no manipulation found")
    else:
        word, trusted = "cannot tell", False
        if det == "UNCERTAIN":
            headline = "cannot tell: unsigned, and the detector's opinion is uncertain"
        else:
            headline = "cannot tell: no signature, no footage tags" + ("" if dt.get("status") == "checked"
                                                                     else ", no detector result")
    return {"word": word, "headline": headline, "trusted": trusted, "exit_code": 0 if trusted else 1,
            "reasons": reasons, "conflicts": conflicts}

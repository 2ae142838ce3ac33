"""The pictures of a check's HTML report: a preview of the file, the detector's most suspicious frames with
their Grad-CAM heatmaps, and the C2PA manifest store as a tree with its thumbnails (all inlined as data
URIs). Split out of evidence.py, which re-exports these names; heavy imports stay inside the functions.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, Optional


# ---- the manifest store as a tree ------------------------------------------------------------------

def _reader_context(allow_remote: bool):
    import c2pa

    try:        # provenance's own settings: remote manifests and OCSP off unless allowed
        from provenance.c2pa_verify import settings

        return c2pa.Context.from_dict(settings([], allow_remote))
    except ImportError:
        return c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": bool(allow_remote)}})


def manifest_tree(path: Path, allow_remote: bool = False, thumb_px: int = 160) -> Optional[Dict[str, Any]]:
    """The manifest store as a tree for the HTML report: the active manifest, its ingredients (with their
    thumbnails, inlined as data URIs) and each ingredient's own manifest. Never fetches anything unless
    `allow_remote`. None when there is no readable manifest."""
    import io

    import c2pa

    from provenance.c2pa_sign import SIGNABLE

    ctx = None
    try:
        ctx = _reader_context(allow_remote)
        with open(path, "rb") as f, c2pa.Reader(SIGNABLE.get(path.suffix.lower()), f, context=ctx) as reader:
            store = json.loads(reader.json())

            def thumb(ref: Any) -> Optional[str]:
                if not isinstance(ref, dict) or not ref.get("identifier"):
                    return None
                buf = io.BytesIO()
                try:
                    reader.resource_to_stream(ref["identifier"], buf)
                except Exception:  # noqa: BLE001 - a missing thumbnail costs the picture only
                    return None
                return _data_uri_from_bytes(buf.getvalue(), ref.get("format") or "image/jpeg", thumb_px)

            manifests = store.get("manifests") or {}

            def node(label: Optional[str], depth: int = 0) -> Optional[Dict[str, Any]]:
                m = manifests.get(label) if label else None
                if not isinstance(m, dict) or depth > 8:
                    return None
                sig = m.get("signature_info") or {}
                acts = []
                for a in m.get("assertions") or []:
                    if isinstance(a, dict) and str(a.get("label", "")).startswith("c2pa.actions"):
                        for x in (a.get("data") or {}).get("actions") or []:
                            if isinstance(x, dict):
                                acts.append({k: x.get(k) for k in ("action", "digitalSourceType", "description")
                                             if x.get(k)})
                gen = [g for g in m.get("claim_generator_info") or [] if isinstance(g, dict)]
                return {
                    "label": label, "title": m.get("title"), "format": m.get("format"),
                    "generator": (f"{gen[0].get('name', '')} {gen[0].get('version', '')}".strip() if gen
                                  else m.get("claim_generator")),
                    "signer": sig.get("common_name"), "signature_issuer": sig.get("issuer"),
                    "signed_at": sig.get("time"),
                    "thumbnail": thumb(m.get("thumbnail")),
                    "assertions": [a.get("label") for a in m.get("assertions") or [] if isinstance(a, dict)],
                    "actions": acts,
                    "ingredients": [{
                        "title": i.get("title"), "format": i.get("format"), "relationship": i.get("relationship"),
                        "thumbnail": thumb(i.get("thumbnail")),
                        "manifest": node(i.get("active_manifest"), depth + 1),
                    } for i in m.get("ingredients") or [] if isinstance(i, dict)],
                }
            return node(store.get("active_manifest"))
    except Exception:  # noqa: BLE001 - the tree is a picture of the manifest; the verdict comes from verify
        return None
    finally:
        if ctx is not None:
            ctx.close()


# ---- pictures for the HTML report -------------------------------------------------------------------

def _data_uri(rgb, max_px: int = 320, fmt: str = ".jpg") -> str:
    import cv2

    h, w = rgb.shape[:2]
    k = min(1.0, max_px / max(h, w, 1))
    if k < 1:
        rgb = cv2.resize(rgb, (max(1, int(w * k)), max(1, int(h * k))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(fmt, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85] if fmt == ".jpg" else [])
    mime = "image/jpeg" if fmt == ".jpg" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(buf.tobytes()).decode()


def _data_uri_from_bytes(data: bytes, mime: str, max_px: int) -> Optional[str]:
    """Re-encode an embedded picture (a C2PA thumbnail) small; None if it does not decode."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        return None
    return _data_uri(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), max_px)


def gather_media(path: Path, kind: str, score: Any, top: int) -> Dict[str, Any]:
    """A preview of the file, and for the detector's `top` most suspicious frames: the frame (face boxed)
    and its Grad-CAM heatmap beside the crop (detect.explain.overlay)."""
    import cv2

    media: Dict[str, Any] = {"preview": None, "top_frames": []}
    if kind not in ("video", "image"):
        return media
    maps = sorted(getattr(score, "heatmaps", []) or [], key=lambda h: -h.prob)[:top] if score is not None else []
    want = {0} | {h.frame for h in maps}
    frames: Dict[int, Any] = {}
    try:
        from swap.video import iter_frames

        for fr in iter_frames(path, select=want.__contains__, stop=max(want) + 1):
            frames[fr.index] = fr.rgb
    except Exception:  # noqa: BLE001 - pictures are a courtesy; the verdict does not depend on them
        pass
    if 0 in frames:
        media["preview"] = _data_uri(frames[0], 360)
    if maps:
        from detect.explain import overlay

        boxes = {(f.track, fr.index): f.box for fr in score.timeline for f in fr.faces}
        for h in maps:
            item = {"frame": h.frame, "time": round(h.time, 3), "prob": round(float(h.prob), 4), "track": h.track,
                    "heatmap": _data_uri(overlay(h.crop, h.cam), 320, ".png"), "thumbnail": None}
            rgb = frames.get(h.frame)
            if rgb is not None:
                rgb = rgb.copy()
                b = boxes.get((h.track, h.frame))
                if b is not None:
                    t = max(2, rgb.shape[1] // 200)
                    cv2.rectangle(rgb, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 40, 40), t)
                item["thumbnail"] = _data_uri(rgb, 320)
            media["top_frames"].append(item)
    return media

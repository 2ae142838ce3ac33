"""Gather every piece of evidence that applies to one file: its C2PA manifest (provenance.c2pa_verify),
its footage tags (provenance.tags, a `.tags` sidecar or a named tag file), a detector's opinion with its
per-frame timeline (detect.score) and, for a video or photo without a manifest, veriswap's invisible watermark
with the manifest it names recovered from the local manifest store (provenance.watermark.resolve). The three run side by side (threads: c2pa's native code, SHA-256 and
the video decoder release the GIL), so a full check costs about its slowest part, not the sum.

Each piece is a dict with a `status`: "checked", "absent" (nothing to check: no manifest, no sidecar, no
detector given), "not-applicable" (e.g. tags on a photo), "unsupported" (a type this check cannot read),
"no-key" (tags present, no key to check them with), "no-face" (detector found no face) or "error".
"""
from __future__ import annotations

import inspect
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .media import _data_uri, _data_uri_from_bytes, _reader_context, gather_media, manifest_tree  # noqa: F401
from .options import CheckOptions

VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".dng",
              ".bmp", ".jxl", ".svg", ".arw", ".nef"}
AUDIO_EXTS = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg"}
DOC_EXTS = {".pdf"}
TAMPER_CODES = ("mismatch", "manifest.unreadable", "claimSignature.missing", "assertion.missing")
MAX_TIMELINE = 2000
# IPTC source types that declare synthetic (AI or algorithmic) making: "signed, AI declared"
SYNTHETIC = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "trainedAlgorithmicData",
             "algorithmicMedia", "compositeSynthetic")                     # timeline points kept in a record (the detector samples fewer)


def kind_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        return "video"
    if ext in IMAGE_EXTS:
        return "image"
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in DOC_EXTS:
        return "document"
    return "other"


def _one_line(e: BaseException) -> str:
    return (str(e) or type(e).__name__).strip().splitlines()[0]


def _user_error(e: BaseException) -> bool:
    """A veriswap error the user can act on (bad input): exit code 2, never a crash."""
    return getattr(e, "exit_code", None) == 2


# ---- C2PA ------------------------------------------------------------------------------------------

_VERIFY_PARAMS: Dict[str, Any] = {}


def _verify_kwargs(opts: CheckOptions, notes: List[str]) -> Dict[str, Any]:
    from provenance.c2pa_verify import verify_file

    if not _VERIFY_PARAMS:
        _VERIFY_PARAMS.update(inspect.signature(verify_file).parameters)
    kw: Dict[str, Any] = {"revoked": list(opts.revoked)}
    if "trust_lists" in _VERIFY_PARAMS:
        kw["trust_anchors"] = list(opts.trust_anchors)
        kw["trust_lists"] = list(opts.trust_lists)
    else:                               # a trust list is a PEM bundle of anchors
        kw["trust_anchors"] = list(opts.trust_anchors) + list(opts.trust_lists)
    if "allow_remote" in _VERIFY_PARAMS:
        kw["allow_remote"] = opts.allow_remote
    elif opts.allow_remote:
        notes.append("--allow-remote has no effect: this verify never fetches remote manifests")
    return kw


def c2pa_evidence(path: Path, opts: CheckOptions) -> Dict[str, Any]:
    from provenance.c2pa_verify import verify_file

    notes: List[str] = []
    t0 = time.perf_counter()
    try:
        rep = verify_file(path, **_verify_kwargs(opts, notes))
    except Exception as e:  # noqa: BLE001 - a file c2pa cannot read is evidence of nothing, not a crash
        if not _user_error(e):
            raise
        msg = _one_line(e)
        if msg.startswith("no such file") or "trust anchor" in msg or "revocation" in msg.lower():
            raise
        return {"status": "unsupported", "detail": msg, "seconds": round(time.perf_counter() - t0, 4)}
    d = rep.to_dict() if hasattr(rep, "to_dict") else dict(rep)
    d = json.loads(json.dumps(d, default=str))          # plain JSON types only (dataclasses, enums, paths)
    state = d.get("state")
    failures = d.get("failures") or []
    out: Dict[str, Any] = {
        "status": "absent" if state == "no-manifest" else "checked",
        "state": state,
        "trusted": state == "trusted",
        "signer_trust": d.get("trust"),                 # the active signer alone: trusted | untrusted | unknown
        "signer": d.get("signer"),
        "issuer": d.get("issuer"),
        "signed_at": d.get("signed_at"),
        "ai_declared": bool(d.get("ai_generated")) or d.get("ai_declaration") in SYNTHETIC,
        "ai_declaration": d.get("ai_declaration") or ("trainedAlgorithmicMedia" if d.get("ai_generated") else "none"),
        "ai_words": d.get("ai_words"),
        "digital_source_types": d.get("digital_source_types") or [],
        "identities": [{"actor": i.get("actor"), "organization": i.get("organization"),
                        "credential": i.get("credential"), "type": i.get("sig_type")}
                       for i in d.get("cawg_identity") or [] if isinstance(i, dict)],
        "warnings": list(d.get("warnings") or []),
        "remote_manifest": d.get("remote_manifest"),
        "tampered": state == "invalid" and any(
            any(t in str(f.get("code", "")) for t in TAMPER_CODES) for f in failures if isinstance(f, dict)),
        "failures": [{"code": f.get("code"), "words": f.get("words")} for f in failures if isinstance(f, dict)],
        "notes": notes,
        "report": d,
        "seconds": round(time.perf_counter() - t0, 4),
    }
    return out


# ---- footage tags ----------------------------------------------------------------------------------

def tags_evidence(path: Path, opts: CheckOptions, kind: str) -> Dict[str, Any]:
    from provenance.tags import check_video, default_tags_path

    tags = Path(opts.tags) if opts.tags else default_tags_path(path)
    if kind != "video":
        return {"status": "not-applicable", "detail": "footage tags are for videos"}
    if not tags.is_file():
        return {"status": "absent", "detail": f"no tag file ({tags.name} beside the file, or --tags)"}
    if not opts.tag_key:
        return {"status": "no-key", "path": str(tags),
                "detail": f"a tag file is present ({tags.name}) but no key was given (--tag-key or tag_key in "
                          "the config): its frames were not checked"}
    t0 = time.perf_counter()
    try:
        rep = check_video(path, tags, opts.tag_key)
    except Exception as e:  # noqa: BLE001
        if not _user_error(e):
            raise
        return {"status": "error", "path": str(tags), "detail": _one_line(e),
                "seconds": round(time.perf_counter() - t0, 4)}
    d = rep.to_dict()
    status = d.get("status") or ""
    flagged: List[Dict[str, Any]] = []      # the frames that failed, by video frame index where there is one
    vi = -1
    for pos, ch in enumerate(status):
        if ch != "M":
            vi += 1
        if ch != ".":
            flagged.append({"position": pos, "status": ch, "video_frame": None if ch == "M" else vi})
    return {
        "status": "checked", "path": str(tags), "ok": bool(d.get("ok")), "mode": d.get("mode"),
        "frames_tagged": d.get("frames_tagged"), "frames_video": d.get("frames_video"),
        "counts": d.get("counts") or {}, "strip": status, "flagged": flagged[:1000],
        "flagged_total": len(flagged), "problems": d.get("problems") or [],
        "key_matches": d.get("key_matches"), "tags_authentic": d.get("tags_authentic"),
        "stream_matches": d.get("stream_matches"),
        "report": d, "seconds": round(time.perf_counter() - t0, 4),
    }


# ---- detector --------------------------------------------------------------------------------------

_DETECTORS: Dict[tuple, Any] = {}


def load_detector(folder: str, device: str = "cpu"):
    """One loaded detector per (folder, device) per process."""
    key = (str(Path(folder).resolve()), device)
    if key not in _DETECTORS:
        from detect.model import Detector

        dev = device
        if dev == "auto":
            import torch

            dev = "cuda" if torch.cuda.is_available() else "cpu"
        _DETECTORS[key] = Detector(Path(folder), device=dev)
    return _DETECTORS[key]


_CARDS: Dict[str, Any] = {}


def _detector_opinion(vs: Any, det: Any) -> Dict[str, Any]:
    """FAKE / REAL only where the detector's model card backs such a call on unseen identities and
    methods (detect.verdict), else UNCERTAIN with the reasons. Where this install has no detect.verdict,
    a detector trained from random weights is UNCERTAIN (such detectors do not generalise)."""
    try:
        from detect.card import ModelCard
        from detect.verdict import decide as honest
    except ImportError:
        honest = None
    if honest is not None:
        key = str(det.folder)
        if key not in _CARDS:
            try:
                _CARDS[key] = (ModelCard.load(det.folder), None)
            except Exception as e:  # noqa: BLE001 - an unreadable card means no validated verdict
                if not _user_error(e):
                    raise
                _CARDS[key] = (None, f"model card unreadable: {_one_line(e)}")
        card, problem = _CARDS[key]
        v = honest(float(vs.score), float(vs.threshold), card)
        reasons = ([problem] if problem else []) + list(v.reasons)
        return {"verdict": v.label, "basis": "; ".join(reasons) if v.label == "UNCERTAIN" else "; ".join(v.basis),
                "validated": list(v.basis), "model_card": card is not None}
    cfg = det.config
    if not getattr(cfg, "weights_init", None):
        return {"verdict": "UNCERTAIN",
                "basis": "the detector was trained from random weights (no pretrained start in its config); "
                         "such detectors do not generalise beyond their training clips", "validated": [],
                "model_card": False}
    return {"verdict": "FAKE" if vs.fake else "REAL",
            "basis": f"score {vs.score:.3f} vs calibrated threshold {vs.threshold:.3f} "
                     f"({getattr(cfg, 'threshold_method', 'default')})", "validated": [], "model_card": False}


def detector_evidence(path: Path, opts: CheckOptions, kind: str, keep: Optional[Dict[str, Any]] = None
                      ) -> Dict[str, Any]:
    if not opts.detector:
        return {"status": "absent", "detail": "no detector given (--detector DIR or detector in the config)"}
    if kind not in ("video", "image"):
        return {"status": "not-applicable", "detail": f"the detector judges faces in videos and photos, not {kind}"}
    from detect.score import score_video

    t0 = time.perf_counter()
    det = load_detector(opts.detector, opts.device)     # a bad detector folder raises: exit 2 for the run
    try:
        vs = score_video(path, det, frames=opts.frames, heatmaps=opts.heatmaps if opts.media else 0, truth=False)
    except Exception as e:  # noqa: BLE001
        if not _user_error(e):
            raise
        msg = _one_line(e)
        return {"status": "no-face" if "no face" in msg else "error", "detail": msg,
                "seconds": round(time.perf_counter() - t0, 4)}
    opinion = _detector_opinion(vs, det)
    thr = float(vs.threshold)
    timeline = [{"frame": fr.index, "time": fr.time, "prob": None if fr.prob is None else round(float(fr.prob), 5),
                 "faces": len(fr.faces)} for fr in vs.timeline][:MAX_TIMELINE]
    flagged = [t["frame"] for t in timeline if t["prob"] is not None and t["prob"] >= thr]
    if keep is not None:
        keep["score"] = vs
    return {
        "status": "checked", "detector": str(opts.detector), "arch": det.config.arch,
        "verdict": opinion["verdict"], "basis": opinion["basis"], "validated": opinion["validated"],
        "model_card": opinion["model_card"], "raw_verdict": vs.verdict.upper(),
        "score": round(float(vs.score), 5), "threshold": round(thr, 5), "rule": vs.rule,
        "frames_total": vs.frames_total, "frames_sampled": vs.frames_sampled, "fps": vs.fps,
        "frames_flagged": len(flagged), "flagged_frames": flagged,
        "tracks": [{"track": t.track, "frames": t.frames, "score": t.score, "fake": t.fake, "decisive": t.decisive}
                   for t in vs.tracks],
        "timeline": timeline, "warnings": list(vs.warnings),
        "seconds": round(time.perf_counter() - t0, 4),
    }


# ---- invisible watermark (a stripped or re-encoded veriswap swap) -----------------------------------

WATERMARK_MAX_FRAMES = 150              # frames searched per video (6 s at 25 fps: a swap marks every frame)


def watermark_evidence(path: Path, opts: CheckOptions, kind: str) -> Dict[str, Any]:
    """Decode veriswap's watermark and recover the manifest it names from the manifest store
    (provenance.watermark.resolve): run only on a video or photo that carries no C2PA manifest."""
    if kind not in ("video", "image"):
        return {"status": "not-applicable", "detail": f"the watermark is in the pictures of videos and photos, not {kind}"}
    from provenance.store import ManifestStore
    from provenance.watermark.resolve import resolve

    t0 = time.perf_counter()
    try:
        store = ManifestStore(Path(opts.store) if opts.store else None)
        res = resolve(path, store, list(opts.trust_anchors) + list(opts.trust_lists), max_frames=WATERMARK_MAX_FRAMES)
    except Exception as e:  # noqa: BLE001 - a picture too small to carry it, or an unusable store
        if not _user_error(e):
            raise
        return {"status": "unsupported" if "store" not in _one_line(e).lower() else "error",
                "detail": _one_line(e), "seconds": round(time.perf_counter() - t0, 4)}
    d = res.detection
    out: Dict[str, Any] = {
        "status": "checked", "found": bool(d.found), "payload": d.payload_id, "z": round(float(d.z), 3),
        "bit_confidence": round(float(d.bit_confidence), 4), "mirrored": bool(d.mirrored),
        "frames_total": d.frames_total, "frames_found": d.frames_found, "frames": d.frames,
        "alg": d.alg, "version": d.version, "max_frames": WATERMARK_MAX_FRAMES, "store": res.store,
        "store_entries": len(res.recovered), "recovered": None,
    }
    b = res.best
    if b is not None:
        rep, rec = b.report, b.record
        swap = rep.get("swap") or {}
        model = None
        if swap.get("model_hash"):
            model = str(swap["model_hash"]) + (f" ({swap['model_name']})" if swap.get("model_name") else "")
        out["recovered"] = json.loads(json.dumps({
            "state": b.state, "verified": b.binding_ok and b.state != "invalid", "binding_ok": b.binding_ok,
            "trusted": b.state == "intact-trusted", "content_changed": b.content_changed,
            "manifest_label": rep.get("manifest_label") or rec.get("manifest_label"),
            "signer": rep.get("signer") or rec.get("signer"), "issuer": rep.get("issuer"),
            "signed_at": rep.get("signed_at") or rec.get("signed_at"),
            "ai_declared": bool(rep.get("ai_generated")) or rep.get("ai_declaration") in SYNTHETIC,
            "ai_declaration": rep.get("ai_declaration") or ("trainedAlgorithmicMedia" if rep.get("ai_generated")
                                                            else "none"),
            "model": model or rec.get("model"), "source": swap.get("source") or rec.get("source"),
            "title": rec.get("title"), "problems": list(b.problems), "report": rep,
        }, default=str))
    out["seconds"] = round(time.perf_counter() - t0, 4)
    return out


# ---- one file ----------------------------------------------------------------------------------------

def gather(path: Path, opts: CheckOptions, parallel: bool = True) -> Dict[str, Any]:
    """Every piece of evidence for `path` (no verdict yet: see verdict.decide)."""
    path = Path(path)
    kind = kind_of(path)
    keep: Dict[str, Any] = {}
    jobs: Dict[str, Callable[[], Dict[str, Any]]] = {
        "c2pa": lambda: c2pa_evidence(path, opts),
        "tags": lambda: tags_evidence(path, opts, kind),
        "detector": lambda: detector_evidence(path, opts, kind, keep),
    }
    heavy = [k for k, st in (("tags", kind == "video" and (opts.tags or Path(str(path) + ".tags").exists())
                               and opts.tag_key),
                              ("detector", bool(opts.detector) and kind in ("video", "image"))) if st]
    out: Dict[str, Any] = {}
    if parallel and heavy:
        # the detector (the slowest part) runs here; C2PA and tags beside it
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vs-check") as ex:
            futs = {k: ex.submit(fn) for k, fn in jobs.items() if k != "detector"}
            out["detector"] = jobs["detector"]()
            for k, f in futs.items():
                out[k] = f.result()
    else:
        for k, fn in jobs.items():
            out[k] = fn()
    if out["c2pa"].get("status") == "absent":
        out["watermark"] = watermark_evidence(path, opts, kind)
    else:
        out["watermark"] = {"status": "not-applicable",
                            "detail": "searched only in files without a C2PA manifest"}
    if opts.media:
        out["media"] = gather_media(path, kind, keep.get("score"), opts.heatmaps)
        if out["c2pa"].get("status") == "checked":
            out["media"]["manifest_tree"] = manifest_tree(path, opts.allow_remote)
    out["kind"] = kind
    return out

"""Demo step: a copy of the swap as a platform would serve it (metadata stripped, re-encoded at CRF 28) is
still recognised by its invisible watermark, and its manifest recovered from the local store and verified."""
from __future__ import annotations

from pathlib import Path

from .core import Context, StepResult


def _step_watermark(ctx: Context, res: StepResult) -> None:
    from provenance import keys as K
    from provenance.c2pa_verify import verify_file
    from provenance.store import ManifestStore
    from provenance.watermark import attacks as A
    from provenance.watermark.cli import describe
    from provenance.watermark.resolve import resolve

    signed = Path(ctx.data["convert"]["output"])
    stripped = ctx.path("tamper", f"{signed.stem}.stripped-crf28.mp4")
    stripped.parent.mkdir(parents=True, exist_ok=True)
    A.strip_and_reencode(signed, stripped, crf=28)
    anchor = ctx.key_dir / K.ROOT_CERT
    plain = verify_file(stripped, [anchor])
    r = resolve(stripped, ManifestStore(), [anchor])
    d = r.detection
    ctx.say(f"stripped + re-encoded copy ({stripped.name}): C2PA verify says [bold]{plain.state.upper()}[/]")
    if d.found:
        ctx.say(f"watermark {d.payload_id} found in {d.frames_found}/{d.frames_total} frames "
                f"(z {d.z:.1f}, {d.bit_confidence:.0%} of coded bits agree)")
        ctx.say(describe(r))
        if r.best is not None:
            ctx.say(f"recovered manifest: [bold]{r.best.state}[/]"
                    + (" (content hash differs, as expected after re-encoding)" if r.best.content_changed else ""))
    else:
        ctx.say(f"no watermark found (z {d.z:.1f})")
    res.ok = plain.state == "no-manifest" and r.exit_code(anchors=True) == 0
    res.lines.append(f"stripped + CRF 28: verify {plain.state}; watermark "
                     f"{d.payload_id or 'not found'}; manifest {'recovered, ' + r.best.state if r.best else 'not recovered'}")
    ctx.data["watermark"] = {"stripped_file": str(stripped), "verify_state": plain.state,
                             "payload_id": d.payload_id, "frames_found": d.frames_found,
                             "frames_total": d.frames_total, "z": d.z,
                             "recovered": r.best.record.get("manifest_label") if r.best else None,
                             "recovered_state": r.best.state if r.best else None}

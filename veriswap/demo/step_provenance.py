"""Steps 4, 6 and 7: a provenance identity, verifying the signed output, footage tags and a tamper check."""
from __future__ import annotations

import os
from pathlib import Path

from .core import PERSON_A, Context, StepResult
from .media import alter_coded_frame, flip_media_byte


def _step_keys(ctx: Context, res: StepResult) -> None:
    from provenance import keys as K

    kd = ctx.key_dir
    if (kd / K.SIGNER_KEY).exists():
        ident = K.load_identity(kd)
        res.resumed = True
        ctx.say(f"using the identity in {kd}")
    else:
        ident = K.generate_identity(kd, name="veriswap demo")
        ctx.say(f"created {kd}: root.pem (trust anchor), signer.pem/.key (C2PA, Ed25519), tag.key (HMAC)")
    ctx.say(f"signer {ident.subject}, valid until {ident.certificate.not_valid_after_utc:%Y-%m-%d}")
    res.lines.append(f"{ident.subject}; trust anchor {kd / K.ROOT_CERT}")
    ctx.data["keys"] = {"key_dir": str(kd), "trust_anchor": str(kd / K.ROOT_CERT), "tag_key": str(kd / K.TAG_KEY),
                        "signer": ident.subject, "check_config": str(_write_check_config(ctx, kd))}


def _write_check_config(ctx: Context, kd: Path) -> Path:
    """DIR/check.toml: `veriswap check --config DIR/check.toml` then trusts the demo's root and reads
    its footage tags with the demo's tag key (paths relative to the config file)."""
    from provenance import keys as K
    from provenance.fsutil import atomic_write_bytes

    cfg = ctx.path("check.toml")
    rel = lambda p: Path(os.path.relpath(p, cfg.parent)).as_posix()   # noqa: E731
    text = ("# veriswap check --config this file: the demo's trust anchor and footage-tag key\n"
            f'trust_anchors = ["{rel(kd / K.ROOT_CERT)}"]\n'
            f'tag_key = "{rel(kd / K.TAG_KEY)}"\n')
    atomic_write_bytes(cfg, text.encode())
    return cfg


def _step_verify(ctx: Context, res: StepResult) -> None:
    from provenance import keys as K
    from provenance.c2pa_verify import verify_file

    signed = Path(ctx.data["convert"]["output"])
    anchor = ctx.key_dir / K.ROOT_CERT
    trusted = verify_file(signed, [anchor])
    untrusted = verify_file(signed)
    tampered_p = ctx.path("tamper", f"{signed.stem}.byte-flipped.mp4")
    flip_media_byte(signed, tampered_p)
    tampered = verify_file(tampered_p, [anchor])
    ai = ", ".join(s.rsplit("/", 1)[-1] for s in trusted.digital_source_types) or "not declared"
    ctx.say(f"with --trust-anchor {anchor}: [bold]{trusted.state.upper()}[/], signed by {trusted.signer}, "
            f"AI-made: {ai}")
    if trusted.swap:
        sw = trusted.swap
        ctx.say(f"manifest: face swap {sw.get('direction')}, model {str(sw.get('model_hash'))[:23]}..., "
                f"{sw.get('faces_swapped')} faces in {sw.get('frames_swapped')}/{sw.get('frames_total')} frames, "
                f"made from {', '.join(str(i.get('title')) for i in trusted.ingredients)}")
    ctx.say(f"without a trust anchor: [bold]{untrusted.state.upper()}[/] "
            f"({', '.join(f.code for f in untrusted.failures) or 'no findings'})")
    ctx.say(f"a copy with one media byte flipped ({tampered_p.name}): [bold]{tampered.state.upper()}[/] "
            f"({', '.join(f.code for f in tampered.failures)})")
    res.ok = (trusted.state == "trusted" and trusted.ai_generated and untrusted.state == "valid-untrusted"
              and tampered.state == "invalid")
    res.lines.append(f"with anchor: {trusted.state} (AI-made: {ai}); no anchor: {untrusted.state}; "
                     f"1 byte flipped: {tampered.state}")
    ctx.data["verify"] = {"file": str(signed), "trust_anchor": str(anchor), "state": trusted.state,
                          "ai_generated": trusted.ai_generated,
                          "digital_source_types": trusted.digital_source_types,
                          "state_no_anchor": untrusted.state, "tampered_file": str(tampered_p),
                          "state_tampered": tampered.state,
                          "tampered_failures": [f.code for f in tampered.failures]}


def _step_tags(ctx: Context, res: StepResult) -> None:
    from provenance.fsutil import atomic_write_bytes
    from provenance.tags import check_video, load_tag_key, tag_video

    video = ctx.video(PERSON_A)
    key = load_tag_key(ctx.key_dir / "tag.key")
    tags = tag_video(video, key, mode="hmac")
    ctx.say(f"tagged {video} -> {tags} (HMAC-SHA256 per coded frame, chained)")
    clean = check_video(video, tags, key)
    k = ctx.opts.tamper_frame if ctx.opts.tamper_frame is not None else int(ctx.opts.frames * 0.6)
    altered = ctx.path("tamper", f"{PERSON_A}.frame{k}-altered.mp4")
    alter_coded_frame(video, altered, k)
    # the camera's tags travel with the copy as its sidecar, so `veriswap check` finds them there too
    atomic_write_bytes(altered.with_name(altered.name + ".tags"), Path(tags).read_bytes())
    bad = check_video(altered, tags, key)
    ctx.say(f"check {video.name}: [bold]{'AUTHENTIC' if clean.ok else 'TAMPERED'}[/]  {clean.status}")
    ctx.say(f"check {altered.name}: [bold]{'AUTHENTIC' if bad.ok else 'TAMPERED'}[/]  {bad.status}")
    fb = bad.first_bad
    if fb is not None:
        ctx.say(f"first bad frame: '{fb.status}' video frame {fb.video_index} at {fb.time:.2f} s "
                f"(the frame that was altered: {k})")
    located = (fb is not None and fb.video_index == k and bad.status[k] == "N"
               and set(bad.status[:k] + bad.status[k + 1:]) <= {"."})
    res.ok = clean.ok and not bad.ok and located
    res.lines.append(f"original: {'authentic' if clean.ok else 'NOT authentic'}; frame {k} altered: "
                     + (f"flagged exactly frame {fb.video_index} ('{bad.status[k]}')" if located
                        else f"status {bad.status}"))
    ctx.data["tags"] = {"video": str(video), "tags": str(tags), "status_original": clean.status, "original_ok": clean.ok,
                        "tampered_video": str(altered), "altered_frame": k, "status_tampered": bad.status,
                        "tampered_ok": bad.ok, "first_bad_frame": fb.video_index if fb else None}

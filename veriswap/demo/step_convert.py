"""Step 5, convert: A's clip A->B, signed, with labels and masks (and the other converts the demo makes)."""
from __future__ import annotations

import json
from typing import Optional

from swap.labels import Labels

from .core import PERSON_A, Context, StepResult


def _step_convert(ctx: Context, res: StepResult) -> None:
    """Swap A's face for B's in the full frames of A's clip: colour-matched, hull mask, A's audio kept;
    convert writes per-frame labels + masks and C2PA-signs the output with the demo identity."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from swap.convert import ConvertSettings, convert
    from swap.labels import default_labels_dir, read_labels
    from swap.progress import progress_bar

    o = ctx.opts
    video = ctx.video(PERSON_A)
    out = ctx.path("outputs", f"{PERSON_A}_a2b.mp4")
    labels_path = default_labels_dir(out) / "labels.json"
    aln = ctx.faces(PERSON_A) / "alignments.json"
    model_sha = json.loads((ctx.model_dir / "config.json").read_text())["weights"]["sha256"]
    labels = None
    if out.is_file() and labels_path.is_file():
        try:
            old = read_labels(labels_path)
            if (old.model_sha256 == f"sha256:{model_sha}"
                    and (old.counts or {}).get("frames") == o.frames and old.c2pa_manifest):
                from provenance.c2pa_verify import verify_file
                # signed with the identity now in DIR/keys (keys/ may have been replaced since)
                if verify_file(out, [ctx.key_dir / "root.pem"]).state == "trusted":
                    labels = old
        except Exception:  # noqa: BLE001 - an unreadable earlier output is simply made again
            labels = None
    if labels is not None:
        res.resumed = True
        ctx.say(f"{out} was already made with this model")
    else:
        settings = ConvertSettings(direction="a2b", device=o.device, key_dir=str(ctx.key_dir))
        with progress_bar(TextColumn("  convert"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=ctx.console, disable=not o.progress) as bar:
            task = bar.add_task("convert", total=None)
            s = convert(video, ctx.model_dir, out, aln, settings,
                        progress=lambda done, total: bar.update(task, completed=done, total=total or None))
        for w in s.warnings:
            ctx.say(f"[yellow]warning:[/] {w}")
        ctx.say(f"{s.frames} frames in {s.seconds:.0f} s ({s.fps:.1f} fps): {s.faces_swapped} faces of A "
                f"swapped to B in {s.frames_swapped} frames, colour-matched, A's audio kept")
        labels = read_labels(labels_path)
    c = labels.counts
    ctx.say(f"output {out}, C2PA-signed by convert with {ctx.key_dir}")
    ctx.say(f"labels {labels_path} + {c['frames_swapped']} manipulation masks in {labels_path.parent / 'masks'}")
    res.ok = c["frames_swapped"] > 0 and bool(labels.c2pa_manifest)
    res.lines.append(f"{out.name}: {c['faces_swapped']} faces swapped A->B in {c['frames_swapped']}/{c['frames']} "
                     f"frames; labels + masks in {labels_path.parent.name}/")
    ctx.data["convert"] = {"output": str(out), "labels": str(labels_path), "counts": c,
                           "manifest_label": labels.c2pa_manifest, "model_sha256": model_sha}


def _convert_once(ctx: Context, person: str, direction: str, bar_label: str, frames: Optional[str] = None,
                  name: Optional[str] = None) -> Labels:
    """`swap.convert` one clip (signed; only `frames` if given), unless an earlier run made it with this model;
    returns its labels."""
    from swap.convert import ConvertSettings, convert
    from swap.convert.batch import already_done
    from swap.labels import default_labels_dir, read_labels

    out = ctx.path("outputs", f"{name or f'{person}_{direction}'}.mp4")
    labels_path = default_labels_dir(out) / "labels.json"
    model_sha = json.loads((ctx.model_dir / "config.json").read_text())["weights"]["sha256"]
    settings = ConvertSettings(direction=direction, device=ctx.opts.device, key_dir=str(ctx.key_dir), frames=frames)
    if already_done(ctx.video(person), out, model_sha, settings):
        old = read_labels(labels_path)
        # the demo remakes its clips at the same path when --frames changes: the length must match too
        if (old.counts or {}).get("frames") == ctx.opts.frames and old.c2pa_manifest:
            return old
    s = convert(ctx.video(person), ctx.model_dir, out, ctx.faces(person) / "alignments.json", settings)
    ctx.say(f"{bar_label}: {s.frames} frames in {s.seconds:.1f} s, {s.faces_swapped} faces swapped -> {out}")
    return read_labels(labels_path)

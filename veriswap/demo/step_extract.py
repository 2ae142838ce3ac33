"""Step 2, extract: faces of both clips (A filtered by the reference photo), then `sort` by identity."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

from swap.errors import InputError

from .core import PERSON_A, PERSON_B, Context, StepResult


def _step_extract(ctx: Context, res: StepResult) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from swap.extract import ExtractSettings, extract
    from swap.progress import progress_bar
    from swap.sort import SortSettings, sort_faces

    o = ctx.opts
    out: Dict[str, Any] = {}
    resumed = True
    for person, ref in ((PERSON_A, ctx.data["videos"]["reference_photo"]), (PERSON_B, None)):
        with progress_bar(TextColumn(f"  extract {person:<13}"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), console=ctx.console, disable=not o.progress) as bar:
            task = bar.add_task("extract", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total or None)

            s = extract([ctx.video(person)], ctx.faces(person), settings=ExtractSettings(size=o.size),
                        ref_face=Path(ref) if ref else None, jobs=o.jobs, progress=progress)
        for e in s.errors:
            raise InputError(f"extract {person}: {e}")
        for w in s.warnings:
            ctx.say(f"[yellow]warning:[/] {w}")
        faces_json = json.loads((ctx.faces(person) / "faces.json").read_text())
        n = len(faces_json["faces"])
        resumed = resumed and s.frames_read == 0
        filt = f", {s.faces_filtered} dropped by the reference-face filter" if ref else ""
        if s.frames_read:
            ctx.say(f"{person}: {s.frames_read} frames in {s.seconds:.1f} s ({s.fps:.1f} fps), "
                    f"{s.faces_found} faces found{filt} -> {n} aligned {o.size}px crops in {ctx.faces(person)}")
        else:
            ctx.say(f"{person}: already extracted, {n} aligned crops in {ctx.faces(person)}")
        if n == 0:
            raise InputError(f"extract found no faces of {person}")
        # what `veriswap sort` says of the folder (scores from faces.json: well under a second); nothing moved
        rep = sort_faces(ctx.faces(person), SortSettings(by="identity", max_distance=SORT_MAX_DISTANCE))
        far = max((f.identity for f in rep.ranked if f.identity is not None), default=float("nan"))
        ctx.say(f"{person}: sort by identity: farthest crop {far:.2f} from the median face, "
                f"{len(rep.rejected)} beyond {SORT_MAX_DISTANCE} (sort.json)")
        out[person] = {"faces_dir": str(ctx.faces(person)), "faces": n,
                       "alignments": str(ctx.faces(person) / "alignments.json"),
                       "faces_filtered": s.faces_filtered, "frames_read": s.frames_read,
                       "sort": {"farthest": round(far, 4), "beyond": len(rep.rejected)}}
    res.resumed = resumed
    res.lines.append(f"{out[PERSON_A]['faces']} faces of A (reference-face filter on), "
                     f"{out[PERSON_B]['faces']} of B, alignments.json + faces.json beside them")
    ctx.data["extract"] = out


SORT_MAX_DISTANCE = 0.55     # against the folder's median face (docs/sort.md: own faces 0.12-0.47, others 0.62+)

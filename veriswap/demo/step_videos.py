"""Step 1, videos: two short H.264 + AAC clips made from the built-in real photos."""
from __future__ import annotations

import json
import os
import shutil

from swap.errors import InputError

from .core import NAMES, PERSON_A, PERSON_B, STATE_FILE, Context, StepResult


def _step_videos(ctx: Context, res: StepResult) -> None:
    from swap.samples import make_face_video, save_photo
    from swap.video import atomic_write_bytes, probe

    o = ctx.opts
    want = {"frames": o.frames, "size": [640, 480], "fps": 25}
    state_p = ctx.path(STATE_FILE)
    state = json.loads(state_p.read_text()) if state_p.is_file() else {}
    made = []
    for person in (PERSON_A, PERSON_B):
        p = ctx.video(person)
        ok = False
        if p.is_file() and state.get("videos", {}).get(person) == want:
            try:
                ok = probe(p).frames == o.frames
            except InputError:
                ok = False
        if not ok:
            # faces of an older clip no longer match it: start that person's faces afresh
            shutil.rmtree(ctx.faces(person), ignore_errors=True)
            tmp = p.with_name(f".{p.stem}.tmp.mp4")
            make_face_video(tmp, person, frames=o.frames, size=(640, 480), fps=25)
            os.replace(tmp, p)
            made.append(person)
        state.setdefault("videos", {})[person] = want
    ref = ctx.path("videos", f"{PERSON_A}_photo.png")
    if not ref.is_file():
        save_photo(PERSON_A, ref)
    atomic_write_bytes(state_p, json.dumps(state, indent=2).encode())
    res.resumed = not made
    for person in (PERSON_A, PERSON_B):
        info = probe(ctx.video(person))
        ctx.say(f"{'made' if person in made else 'kept'} {ctx.video(person)}: {NAMES[person]}, "
                f"{info.frames} frames {info.width}x{info.height} @ {info.fps:g} fps, "
                f"{'H.264 + AAC' if info.has_audio else 'H.264'}")
    res.lines.append(f"A = {NAMES[PERSON_A]}, B = {NAMES[PERSON_B]}: {o.frames} frames each, 640x480, with audio")
    ctx.data["videos"] = {"a": str(ctx.video(PERSON_A)), "b": str(ctx.video(PERSON_B)), "reference_photo": str(ref)}

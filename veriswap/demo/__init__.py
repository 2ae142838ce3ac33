"""`veriswap demo`: everything that is built, end to end, on the built-in real faces.

    from veriswap.demo import DemoOptions, run_demo
    result = run_demo(DemoOptions(out_dir="demo_out", time_limit=90))   # result.ok, result.to_dict()

Steps (`STEPS` in pipeline.py, one module each: step_videos, step_extract, step_train, step_provenance,
step_convert, step_detect; each is resumable, so a re-run on the same folder redoes only what is missing):

 1. videos   two short H.264 + AAC clips made from real photos: astronaut (Eileen Collins) = identity A,
             Grace Hopper = identity B (`swap.samples`)
 2. extract  dlib HOG detection, 68 landmarks, alignment, identity embeddings; A is filtered with
             `ref_face` = the astronaut photo, so only her face is kept (dlib can fire on the photo twice);
             then `swap.sort` ranks each faces folder by identity (sort.json; nothing is moved)
 3. train    the `original` model for `time_limit` seconds of training in total (a re-run trains only
             the time still missing; a larger limit trains on), preview.png and identity check
 4. keys     a provenance identity (Ed25519 root CA + C2PA signing certificate + tag.key) in DIR/keys
 5. convert  `swap.convert` on A's clip, a2b: B's face in every frame (colour-matched, A's audio kept),
             per-frame labels + manipulation masks, the output C2PA-signed with the demo identity
 6. verify   the signed output: with the trust anchor (trusted, declares AI-composited media), without
             it (valid-untrusted) and a copy with one media byte changed (invalid)
 7. tags     `tag` the astronaut source video (HMAC per coded frame), `check` it and a copy with one
             coded frame altered: the check names the altered frame

 8. detect   a real-vs-swapped face dataset from the demo's own material (real: both clips and their
             mirror images; fake: A->B, a B->A convert made here and the mirrored swaps, with mirrored
             labels), split by video with A's pair held out as the test split; a tiny timm detector
             (resnet10t @ 96 px, 5 epochs, seconds on 2 cores) and `detect score` of A->B, of A's
             real clip and of a partial A->B swap (first half only): verdict, score, a per-frame timeline,
             and for the partial swap the timeline against its labels (frame AUC, IoU). A detector
             trained in seconds on 4 short clips of 2 people demonstrates the pipeline; it is not a
             trustworthy detector (the demo says so)

`core` holds what the steps share (options, results, context, checks, summary), `media` the clips the
checks are made from, `cli` the `veriswap demo` command.
"""
from .core import PERSON_A, PERSON_B, DemoOptions, DemoResult, Step, StepResult, validate_options
from .media import alter_coded_frame, flip_media_byte, mirror_labels, mirror_video
from .pipeline import STEPS, run_demo

__all__ = ["PERSON_A", "PERSON_B", "STEPS", "DemoOptions", "DemoResult", "Step", "StepResult", "alter_coded_frame",
           "flip_media_byte", "mirror_labels", "mirror_video", "run_demo", "validate_options"]

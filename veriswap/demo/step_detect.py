"""Step 8, detect: a real-vs-swapped dataset from the demo's own clips (and mirror images of them), a tiny
timm detector trained in seconds, and `score` of the swap, its real source and a partial swap."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from swap.errors import InputError

from .core import PERSON_A, PERSON_B, Context, StepResult
from .media import mirror_labels, mirror_video
from .step_convert import _convert_once

# from scratch: the demo runs offline and never downloads weights (its model card says so)
DETECT_ARCH = dict(arch="resnet10t", input_size=96, batch_size=16, lr=1e-3, augment=0.25, pretrained=False)


def _timeline_strip(vs: dict) -> str:
    """One character per sampled frame: '#' P(fake) >= threshold, '.' below, ' ' no face."""
    return "".join(" " if f["prob"] is None else "#" if f["prob"] >= vs["threshold"] else "." for f in vs["timeline"])


def _mirrors(ctx: Context, fakes: List[Tuple[str, Path]]) -> Tuple[Dict[str, Tuple[Path, Path]], bool]:
    """Mirrored copies of both real clips and both swaps (with mirrored labels): 4 groups of (real, its swap)
    for the split by video. Returns {person: (real mirror, fake mirror)} and whether anything was made."""
    from provenance.fsutil import atomic_write_bytes
    from swap.alignments import fingerprint
    from swap.labels import default_labels_dir, labels_bytes, read_labels
    from swap.video import probe

    vdir = ctx.path("detect", "videos")
    state_p = ctx.path("detect", "mirrors.json")
    state = json.loads(state_p.read_text()) if state_p.is_file() else {}
    pairs, work = {}, False
    for person, fake in fakes:
        real_m, fake_m = vdir / f"{person}_mirror.mp4", vdir / f"{fake.stem}_mirror.mp4"
        for src, dst in ((ctx.video(person), real_m), (fake, fake_m)):
            fp = fingerprint(src)
            if not dst.is_file() or state.get(dst.name) != fp:
                mirror_video(src, dst)
                state[dst.name] = fp
                work = True
        labels = read_labels(default_labels_dir(fake))
        lp = default_labels_dir(fake_m) / "labels.json"
        lp.parent.mkdir(parents=True, exist_ok=True)
        doc = labels_bytes(mirror_labels(labels, real_m, probe(fake).width), indent=1)
        if not lp.is_file() or lp.read_bytes() != doc:
            atomic_write_bytes(lp, doc)
        pairs[person] = (real_m, fake_m)
    atomic_write_bytes(state_p, json.dumps(state, indent=2).encode())
    return pairs, work


def _dataset(ctx: Context, real: List[Path], fake: List[Path], nf: int):
    """The dataset, split by group (a swap goes with its source) with the seed that holds out A's pair, so the
    two clips scored later were never trained on: (folder, summary, seed)."""
    from detect import dataset as D

    plans = D.plan_videos(real, fake)
    group_a = next(v.group for v, _ in plans if v.path == str(ctx.video(PERSON_A).resolve()))
    split = (0.7, 0.15, 0.15)
    seed = next(sd for sd in range(1000) if D.assign_splits([v.group for v, _ in plans], split, sd)[group_a] == "test")
    ds_dir = ctx.path("detect", "dataset")
    ds_sum = D.build_dataset(real, fake, ds_dir, D.DatasetSettings(frames=nf, split=split, seed=seed))
    for w in ds_sum.warnings:
        ctx.say(f"[yellow]warning:[/] {w}")
    c = ds_sum.counts
    ctx.say(f"dataset {ds_dir}: {ds_sum.samples} face crops of {ds_sum.videos} videos (the 2 clips, their 2 swaps "
            f"and mirror images of all 4), {nf} frames each, split by video: "
            + ", ".join(f"{sp} {c[sp]['real']} real/{c[sp]['fake']} fake" for sp in ("train", "val", "test")))
    return ds_dir, ds_sum, seed


def _detector(ctx: Context, ds_dir: Path):
    """A tiny detector: seconds of training from random init (afresh when the dataset or settings changed)."""
    from detect.train import TrainSettings, train_detector

    det_dir = ctx.path("detect", "detector")
    ts = TrainSettings(**DETECT_ARCH, epochs=ctx.opts.detect_epochs, device=ctx.opts.device)
    try:
        tr = train_detector(ds_dir, det_dir, ts)
    except InputError as e:
        if "other settings" not in str(e):
            raise
        ts.overwrite = True     # the dataset or settings changed since the last run: train afresh
        tr = train_detector(ds_dir, det_dir, ts)
    last = tr.history[-1] if tr.history else {}
    auc = "-" if tr.best_val_auc is None else f"{tr.best_val_auc:.2f}"
    ctx.say(f"detector {det_dir}: {DETECT_ARCH['arch']} @ {DETECT_ARCH['input_size']} px from random init, "
            f"{len(tr.history)} epochs"
            + (f" ({tr.epochs_run} now, {tr.seconds:.1f} s)" if tr.epochs_run else " (done earlier)")
            + f" on {tr.train_samples} crops, val AUC {auc}, threshold {tr.threshold:.3f}"
            + (f", last train loss {last['train_loss']:.3f}" if last.get("train_loss") is not None else ""))
    return det_dir, tr, auc


def _score_one(ctx: Context, det, wsha: str, kind: str, video: Path, nf: int, card=None
               ) -> Tuple[Dict[str, Any], bool]:
    """`score` one clip (kept from an earlier run with the same detector, clip and frames); its facts, with the
    honest verdict (detect.verdict: FAKE / REAL only where the model card validates it)."""
    from detect.score import score_video
    from provenance.fsutil import atomic_write_bytes
    from swap.alignments import fingerprint

    sp = ctx.path("detect", "scores", f"{video.stem}.json")
    key = {"detector": wsha, "video": fingerprint(video), "frames": nf, "truth": 1}
    vs, work = None, False
    if sp.is_file():
        try:
            old = json.loads(sp.read_text())
            vs = old if old.get("demo_key") == key else None
        except ValueError:
            vs = None
    if vs is None:
        vs = {**score_video(video, det, frames=nf).to_dict(), "demo_key": key}
        atomic_write_bytes(sp, json.dumps(vs, indent=2).encode())
        work = True
    probs = [f["prob"] for f in vs["timeline"] if f["prob"] is not None]
    strip = _timeline_strip(vs)
    right = (vs["verdict"] == "fake") == (kind != "real")
    from detect.verdict import decide
    j = decide(vs["score"], vs["threshold"], card, "autoencoder" if kind != "real" else None)
    ctx.say(f"score {video.name} ({kind}): [bold]{j.label}[/] {vs['score']:.3f} vs threshold "
            f"{vs['threshold']:.3f} (score vs threshold alone: {vs['verdict']}, {'right' if right else 'wrong'} "
            f"here); {len(vs['timeline'])} frames, P(fake) "
            f"min/mean/max {min(probs):.2f}/{sum(probs) / len(probs):.2f}/{max(probs):.2f}, "
            f"{strip.count('#')} frames over the threshold |{strip}|")
    g = vs.get("ground_truth") if kind == "partial" else None     # the full swap's frames are all swapped
    if g:
        f3 = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        ctx.say(f"  vs its labels (frames {g['swapped_frames']} swapped): frame AUC {f3(g['frame_auc'])}, "
                f"flagged-vs-swapped IoU {f3(g['iou'])} (precision {f3(g['precision'])}, "
                f"recall {f3(g['recall'])})")
    if j.reasons:
        ctx.say(f"  {j.label}: {'; '.join(j.reasons)}")
    return {"video": str(video), "json": str(sp), "verdict": vs["verdict"], "judgement": j.label,
            "judgement_reasons": j.reasons, "score": vs["score"],
            "threshold": vs["threshold"], "frames": len(vs["timeline"]), "frames_fake": strip.count("#"),
            "timeline": strip, "right": right, "ground_truth": g}, work


def _summary_lines(res: StepResult, ds_sum, tr, auc: str, scores: Dict[str, Dict[str, Any]], note: str) -> None:
    res.lines.append(f"{ds_sum.samples} crops of {ds_sum.videos} videos split by video; {DETECT_ARCH['arch']} "
                     f"@ {DETECT_ARCH['input_size']} px, {len(tr.history)} epochs, val AUC {auc}")
    for kind, s in scores.items():
        res.lines.append(f"{Path(s['video']).name} ({kind}): {s['judgement']} {s['score']:.2f} "
                         f"(thr {s['threshold']:.2f}; score vs threshold alone {s['verdict']}, "
                         f"{'right' if s['right'] else 'wrong'}), "
                         f"{s['frames_fake']}/{s['frames']} frames over |{s['timeline']}|")
        if s["ground_truth"] and s["ground_truth"]["frame_auc"] is not None:
            res.lines.append(f"  partial swap, frames {s['ground_truth']['swapped_frames']}: "
                             f"frame AUC {s['ground_truth']['frame_auc']:.2f} against its labels")
    why = next((s["judgement_reasons"] for s in scores.values() if s.get("judgement_reasons")), [])
    if why:
        res.lines.append(f"UNCERTAIN because: {'; '.join(why)}")
    res.lines.append(f"[dim]{note}[/]")


def _card(ctx: Context, ds_dir: Path, det_dir: Path, det, wsha: str):
    """The detector's model card on the held-out split (original quality only, to keep the demo short), kept
    while the weights are the same."""
    from detect.card import ModelCard, build_card

    try:
        card = ModelCard.load(det_dir)
    except InputError:
        card = None
    if card is None or card.evaluation.get("weights_sha256") != wsha:
        card = build_card(ds_dir, det_dir, detector=det, conditions=("original",))
        card.evaluation["weights_sha256"] = wsha
        card.save(det_dir)
    for line in card.key_lines():
        ctx.say(line)
    return card


def _step_detect(ctx: Context, res: StepResult) -> None:
    """Build a real-vs-swapped face dataset from the demo's own clips, train a tiny detector for a few
    epochs and `score` the swapped output and its real source (both held out in the test split)."""
    from detect.model import Detector

    o = ctx.opts
    nf = max(4, min(o.detect_frames, o.frames))
    # fakes: A->B (the convert step) and B->A (made here, with the same model)
    b2a = _convert_once(ctx, PERSON_B, "b2a", "convert B->A")
    a2b_out = Path(ctx.data["convert"]["output"])
    b2a_out = ctx.path("outputs", f"{PERSON_B}_b2a.mp4")
    pairs, work = _mirrors(ctx, [(PERSON_A, a2b_out), (PERSON_B, b2a_out)])
    real = [ctx.video(PERSON_A), ctx.video(PERSON_B), pairs[PERSON_A][0], pairs[PERSON_B][0]]
    fake = [a2b_out, b2a_out, pairs[PERSON_A][1], pairs[PERSON_B][1]]
    ds_dir, ds_sum, seed = _dataset(ctx, real, fake, nf)
    work = work or ds_sum.videos_resumed < ds_sum.videos
    det_dir, tr, auc = _detector(ctx, ds_dir)
    work = work or tr.epochs_run > 0
    # score the swapped output, its real source, and a partial swap (A->B in the first half only), whose
    # labels let `score` say how well its timeline finds the swapped frames
    half = f"0-{o.frames // 2 - 1}"
    _convert_once(ctx, PERSON_A, "a2b", "convert A->B, first half", frames=half, name=f"{PERSON_A}_a2b_partial")
    partial_out = ctx.path("outputs", f"{PERSON_A}_a2b_partial.mp4")
    det = Detector(det_dir, device=o.device)
    wsha = hashlib.sha256((det_dir / "model.safetensors").read_bytes()).hexdigest()
    card = _card(ctx, ds_dir, det_dir, det, wsha)
    scores = {}
    for kind, video in (("swapped", a2b_out), ("real", ctx.video(PERSON_A)), ("partial", partial_out)):
        scores[kind], scored = _score_one(ctx, det, wsha, kind, video, nf, card)
        work = work or scored
    note = (f"a demonstration of the pipeline, not a trustworthy detector: {tr.train_samples} training crops of "
            f"2 people, seconds of training from random init; its model card: {det_dir / 'MODEL_CARD.md'}")
    ctx.say(f"[yellow]note:[/] {note}")
    res.resumed = not work
    res.demonstration = True        # what is checked: the pipeline ran (trained, every frame scored), not accuracy
    c = ds_sum.counts
    trained = c["train"]["real"] > 0 and c["train"]["fake"] > 0 and c["test"]["real"] > 0 and c["test"]["fake"] > 0
    res.ok = trained and all(s["frames"] == nf for s in scores.values())
    _summary_lines(res, ds_sum, tr, auc, scores, note)
    ctx.data["detect"] = {"dataset": str(ds_dir), "detector": str(det_dir), "seed": seed, "counts": c,
                          "b2a_output": str(b2a_out), "b2a_frames_swapped": b2a.counts["frames_swapped"],
                          "epochs": len(tr.history), "val_auc": tr.best_val_auc, "threshold": tr.threshold,
                          "scores": scores, "note": note}

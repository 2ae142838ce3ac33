"""`veriswap demo`: everything that is built, end to end, on the built-in real faces.

    from swap.demo import DemoOptions, run_demo
    result = run_demo(DemoOptions(out_dir="demo_out", time_limit=90))   # result.ok, result.to_dict()

Steps (the list `STEPS`; each is resumable, so a re-run on the same folder redoes only what is missing):

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

Stages not built yet go into `PLANNED` (the summary lists them as coming); none at the moment.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .errors import InputError, VeriswapError

PERSON_A, PERSON_B = "astronaut", "grace_hopper"
NAMES = {PERSON_A: "Eileen Collins (astronaut)", PERSON_B: "Grace Hopper"}
STATE_FILE = "demo.json"
SUMMARY_FILE = "summary.json"
MIN_TRAIN_SECONDS = 5.0     # a re-run trains on only if at least this much of the time limit is left
# what the demo writes in DIR; `fresh=True` removes exactly these, nothing else
OWNED = ("videos", "faces", "model", "keys", "outputs", "tamper", "detect", STATE_FILE, SUMMARY_FILE)


@dataclass
class DemoOptions:
    out_dir: str = "demo_out"
    time_limit: float = 90.0        # seconds of training in total for the demo model
    frames: int = 50                # frames per sample video (25 fps)
    size: int = 256                 # aligned crop size written by extract
    batch_size: int = 8             # faces per identity per training step
    lr: float = 5e-5
    tamper_frame: Optional[int] = None   # coded frame altered in the tamper copy (default: 60% in)
    jobs: Optional[int] = None      # extract worker processes (default: all cores)
    device: str = "auto"
    detect_frames: int = 16         # frames per video in the detect dataset and when scoring
    detect_epochs: int = 5          # detector training epochs (tiny model, seconds)
    fresh: bool = False             # remove the demo's earlier outputs in out_dir first
    progress: bool = True


class DemoInterrupted(VeriswapError):
    exit_code = 130


@dataclass
class StepResult:
    name: str
    title: str
    seconds: float = 0.0
    resumed: bool = False           # nothing to do: an earlier run had done it
    ok: bool = True                 # the step's checks came out as expected
    lines: List[str] = field(default_factory=list)     # one-line findings for the summary


@dataclass
class DemoResult:
    out_dir: str
    steps: List[StepResult] = field(default_factory=list)
    data: Dict[str, Any] = field(default_factory=dict)  # per-step facts (paths, counts, verdicts)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_dict(self) -> Dict[str, Any]:
        return {"out_dir": self.out_dir, "ok": self.ok, "seconds": round(self.seconds, 1),
                "steps": [asdict(s) for s in self.steps], "data": self.data,
                "planned": [{"name": n, "what": w} for n, w in PLANNED]}


class Context:
    """What steps share: options, output paths, the console, and the facts earlier steps found."""

    def __init__(self, opts: DemoOptions, console):
        self.opts = opts
        self.dir = Path(opts.out_dir)
        self.console = console
        self.data: Dict[str, Any] = {}

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def video(self, person: str) -> Path:
        return self.path("videos", f"{person}.mp4")

    def faces(self, person: str) -> Path:
        return self.path("faces", person)

    @property
    def model_dir(self) -> Path:
        return self.path("model")

    @property
    def key_dir(self) -> Path:
        return self.path("keys")

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", highlight=False)


@dataclass
class Step:
    """One stage of the demo: `run(ctx, result)` fills `result` (and `ctx.data[name]`)."""

    name: str
    title: str
    run: Callable[[Context, StepResult], None]


# ---- 1. sample videos -----------------------------------------------------------------------------

def _step_videos(ctx: Context, res: StepResult) -> None:
    from .samples import make_face_video, save_photo
    from .video import probe

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
    from .video import atomic_write_bytes
    atomic_write_bytes(state_p, json.dumps(state, indent=2).encode())
    res.resumed = not made
    for person in (PERSON_A, PERSON_B):
        info = probe(ctx.video(person))
        ctx.say(f"{'made' if person in made else 'kept'} {ctx.video(person)}: {NAMES[person]}, "
                f"{info.frames} frames {info.width}x{info.height} @ {info.fps:g} fps, "
                f"{'H.264 + AAC' if info.has_audio else 'H.264'}")
    res.lines.append(f"A = {NAMES[PERSON_A]}, B = {NAMES[PERSON_B]}: {o.frames} frames each, 640x480, with audio")
    ctx.data["videos"] = {"a": str(ctx.video(PERSON_A)), "b": str(ctx.video(PERSON_B)), "reference_photo": str(ref)}


# ---- 2. extract -----------------------------------------------------------------------------------

def _step_extract(ctx: Context, res: StepResult) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from .extract import ExtractSettings, extract
    from .progress import progress_bar
    from .sort import SortSettings, sort_faces

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


# ---- 3. train -------------------------------------------------------------------------------------

def _trained_seconds(model_dir: Path) -> float:
    try:
        return float(json.loads((model_dir / "state.json").read_text()).get("elapsed", 0.0))
    except (OSError, ValueError, AttributeError):
        return 0.0


def _step_train(ctx: Context, res: StepResult) -> None:
    o = ctx.opts
    done_s = _trained_seconds(ctx.model_dir) if (ctx.model_dir / "model.safetensors").exists() else 0.0
    left = o.time_limit - done_s
    if done_s and left < MIN_TRAIN_SECONDS:
        res.resumed = True
        st = json.loads((ctx.model_dir / "state.json").read_text())
        ctx.say(f"already trained {done_s:.0f} s ({st.get('iteration')} iterations) of the "
                f"{o.time_limit:.0f} s limit; pass a larger --time-limit to train on")
        summary = {"iteration": st.get("iteration"), "iterations_run": 0, "seconds": 0.0, "it_per_s": None,
                   "last_loss": st.get("last_loss"), "first_loss": None, "stopped_by": "already done",
                   "identity_check": (st.get("identity_checks") or [None])[-1], "resumed_from": st.get("iteration")}
    else:
        from .train import TrainConfig, train
        ctx.say(f"model 'original' (64 px, shared encoder + one decoder per person), batch {o.batch_size}"
                f" per person, {left:.0f} s of training" + (f" (resuming after {done_s:.0f} s)" if done_s else ""))
        cfg = TrainConfig(faces_a=str(ctx.faces(PERSON_A)), faces_b=str(ctx.faces(PERSON_B)),
                          model_dir=str(ctx.model_dir), model="original", batch_size=o.batch_size,
                          time_limit=left, lr=o.lr, save_every=0, preview_every=0, device=o.device,
                          progress=o.progress, identity_check=True)
        summary = train(cfg)
        if summary["stopped_by"] in ("SIGINT", "SIGTERM"):
            raise DemoInterrupted(f"interrupted while training (checkpoint saved at iteration "
                                  f"{summary['iteration']}); run the demo again on {ctx.dir} to resume")
    last = summary.get("last_loss") or {}
    first = summary.get("first_loss") or {}
    if summary["iterations_run"]:
        ctx.say(f"{summary['iterations_run']} iterations in {summary['seconds']:.0f} s "
                f"({summary['it_per_s']} it/s on {summary.get('device', 'cpu')}), loss A/B "
                f"{first.get('loss_a', float('nan')):.3f}/{first.get('loss_b', float('nan')):.3f} -> "
                f"{last.get('loss_a', float('nan')):.3f}/{last.get('loss_b', float('nan')):.3f}")
    ic = summary.get("identity_check")
    ic_txt = ""
    if ic:
        ic_txt = (f"identity check (dlib): A->B judged closer to B in {_pct(ic.get('a2b_closer_to_b'))}, "
                  f"B->A closer to A in {_pct(ic.get('b2a_closer_to_a'))}")
        ctx.say(ic_txt)
    ctx.say(f"checkpoint and preview.png (rows A, A->A, A->B, B, B->B, B->A) in {ctx.model_dir}")
    res.lines.append(f"{summary['iteration']} iterations in total ({_trained_seconds(ctx.model_dir):.0f} s), "
                     f"loss A {last.get('loss_a', float('nan')):.3f} B {last.get('loss_b', float('nan')):.3f}")
    if ic_txt:
        res.lines.append(ic_txt)
    ctx.data["train"] = {"model_dir": str(ctx.model_dir), "preview": str(ctx.model_dir / "preview.png"),
                         "iteration": summary["iteration"], "iterations_run": summary["iterations_run"],
                         "trained_seconds": round(_trained_seconds(ctx.model_dir), 1),
                         "last_loss": last, "identity_check": ic}


def _pct(v: Optional[float]) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


# ---- 4. keys --------------------------------------------------------------------------------------

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
                        "signer": ident.subject}


# ---- 5. convert -----------------------------------------------------------------------------------

def _step_convert(ctx: Context, res: StepResult) -> None:
    """Swap A's face for B's in the full frames of A's clip: colour-matched, hull mask, A's audio kept;
    convert writes per-frame labels + masks and C2PA-signs the output with the demo identity."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from .convert import ConvertSettings, convert, default_labels_dir
    from .progress import progress_bar

    o = ctx.opts
    video = ctx.video(PERSON_A)
    out = ctx.path("outputs", f"{PERSON_A}_a2b.mp4")
    labels_path = default_labels_dir(out) / "labels.json"
    aln = ctx.faces(PERSON_A) / "alignments.json"
    model_sha = json.loads((ctx.model_dir / "config.json").read_text())["weights"]["sha256"]
    labels = None
    if out.is_file() and labels_path.is_file():
        try:
            old = json.loads(labels_path.read_text())
            if (old.get("model", {}).get("sha256") == f"sha256:{model_sha}"
                    and old.get("counts", {}).get("frames") == o.frames and old.get("c2pa_manifest")):
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
        labels = json.loads(labels_path.read_text())
    c = labels["counts"]
    ctx.say(f"output {out}, C2PA-signed by convert with {ctx.key_dir}")
    ctx.say(f"labels {labels_path} + {c['frames_swapped']} manipulation masks in {labels_path.parent / 'masks'}")
    res.ok = c["frames_swapped"] > 0 and bool(labels.get("c2pa_manifest"))
    res.lines.append(f"{out.name}: {c['faces_swapped']} faces swapped A->B in {c['frames_swapped']}/{c['frames']} "
                     f"frames; labels + masks in {labels_path.parent.name}/")
    ctx.data["convert"] = {"output": str(out), "labels": str(labels_path), "counts": c,
                           "manifest_label": labels.get("c2pa_manifest"), "model_sha256": model_sha}


# ---- 6. verify ------------------------------------------------------------------------------------

def flip_media_byte(src: Path, dst: Path) -> int:
    """Copy an MP4 and flip one byte in the middle of its media data (`mdat`); returns the offset."""
    data = bytearray(Path(src).read_bytes())
    pos, target = 0, None
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = bytes(data[pos + 4:pos + 8])
        head = 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if kind == b"mdat":
            target = pos + head + (size - head) // 2
            break
        if size < 8:
            break
        pos += size
    if target is None:
        raise InputError(f"no media data box in {src}")
    data[target] ^= 0x01
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(data))
    return target


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


# ---- 7. footage tags ------------------------------------------------------------------------------

def alter_coded_frame(src: Path, dst: Path, k: int) -> None:
    """Remux `src` to `dst` (no re-encode) with one byte near the end of coded video frame `k` changed,
    the way a bitstream editor alters a frame; audio and every other frame are copied unchanged."""
    from provenance.remux import alter_frame, remux_edit

    def edit(pkts):
        if not 0 <= k < len(pkts):
            raise InputError(f"frame {k} is outside the video (0..{len(pkts) - 1})")
        return alter_frame(k)(pkts)

    dst.parent.mkdir(parents=True, exist_ok=True)
    remux_edit(src, dst, edit)


def _step_tags(ctx: Context, res: StepResult) -> None:
    from provenance.tags import check_video, load_tag_key, tag_video

    video = ctx.video(PERSON_A)
    key = load_tag_key(ctx.key_dir / "tag.key")
    tags = tag_video(video, key, mode="hmac")
    ctx.say(f"tagged {video} -> {tags} (HMAC-SHA256 per coded frame, chained)")
    clean = check_video(video, tags, key)
    k = ctx.opts.tamper_frame if ctx.opts.tamper_frame is not None else int(ctx.opts.frames * 0.6)
    altered = ctx.path("tamper", f"{PERSON_A}.frame{k}-altered.mp4")
    alter_coded_frame(video, altered, k)
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


# ---- 8. detect ------------------------------------------------------------------------------------

DETECT_ARCH = dict(arch="resnet10t", input_size=96, batch_size=16, lr=1e-3, augment=0.25)


def mirror_video(src: Path, dst: Path) -> None:
    """Write a left-right mirrored copy of `src` (video only, same frame count and rate)."""
    import av

    tmp = dst.with_name(f".{dst.stem}.tmp.mp4")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=vin.average_rate or 25)
        vs.width, vs.height, vs.pix_fmt = vin.width, vin.height, "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        for i, fr in enumerate(inp.decode(vin)):
            f = av.VideoFrame.from_ndarray(fr.to_ndarray(format="rgb24")[:, ::-1].copy(), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    os.replace(tmp, dst)


def mirror_labels(labels: dict, source: Path, width: int) -> dict:
    """Convert labels for the mirrored copy of a convert output: boxes and landmarks flipped, the
    mirrored real clip as its source (so the dataset split keeps the pair in one group)."""
    def fx(x: float) -> float:
        return round(width - float(x), 2)

    frames = []
    for fr in labels["frames"]:
        faces = []
        for f in fr.get("faces") or []:
            x0, y0, x1, y1 = f["box"]
            g = {k: f[k] for k in ("face", "track") if k in f}
            g["box"] = [fx(x1), y0, fx(x0), y1]
            if f.get("landmarks"):
                g["landmarks"] = [[fx(x), y] for x, y in f["landmarks"]]
            faces.append(g)
        frames.append({"index": fr["index"], "time": fr.get("time"), "swapped": bool(fr.get("swapped")), "faces": faces})
    return {"format": labels["format"], "version": labels.get("version"), "source": str(Path(source).resolve()),
            "mirrored_from": labels.get("output"), "width": labels.get("width"), "height": labels.get("height"),
            "direction": labels.get("direction"), "frames": frames}


def _convert_once(ctx: Context, person: str, direction: str, bar_label: str, frames: Optional[str] = None,
                  name: Optional[str] = None) -> dict:
    """`swap.convert` one clip (signed; only `frames` if given), unless an earlier run made it with this model;
    returns its labels."""
    from .convert import ConvertSettings, convert, default_labels_dir
    from .convert_batch import already_done

    out = ctx.path("outputs", f"{name or f'{person}_{direction}'}.mp4")
    labels_path = default_labels_dir(out) / "labels.json"
    model_sha = json.loads((ctx.model_dir / "config.json").read_text())["weights"]["sha256"]
    settings = ConvertSettings(direction=direction, device=ctx.opts.device, key_dir=str(ctx.key_dir), frames=frames)
    if already_done(ctx.video(person), out, model_sha, settings):
        old = json.loads(labels_path.read_text())
        # the demo remakes its clips at the same path when --frames changes: the length must match too
        if old.get("counts", {}).get("frames") == ctx.opts.frames and old.get("c2pa_manifest"):
            return old
    s = convert(ctx.video(person), ctx.model_dir, out, ctx.faces(person) / "alignments.json", settings)
    ctx.say(f"{bar_label}: {s.frames} frames in {s.seconds:.1f} s, {s.faces_swapped} faces swapped -> {out}")
    return json.loads(labels_path.read_text())


def _timeline_strip(vs: dict) -> str:
    """One character per sampled frame: '#' P(fake) >= threshold, '.' below, ' ' no face."""
    return "".join(" " if f["prob"] is None else "#" if f["prob"] >= vs["threshold"] else "." for f in vs["timeline"])


def _step_detect(ctx: Context, res: StepResult) -> None:
    """Build a real-vs-swapped face dataset from the demo's own clips, train a tiny detector for a few
    epochs and `score` the swapped output and its real source (both held out in the test split)."""
    from detect import dataset as D
    from detect.model import Detector
    from detect.score import score_video
    from detect.train import TrainSettings, train_detector
    from swap.alignments import fingerprint
    from .convert import default_labels_dir
    from .video import atomic_write_bytes, probe

    o = ctx.opts
    ddir = ctx.path("detect")
    vdir = ddir / "videos"
    nf = max(4, min(o.detect_frames, o.frames))
    work = False
    # fakes: A->B (the convert step) and B->A (made here, with the same model)
    b2a = _convert_once(ctx, PERSON_B, "b2a", "convert B->A")
    a2b_out = Path(ctx.data["convert"]["output"])
    b2a_out = ctx.path("outputs", f"{PERSON_B}_b2a.mp4")
    # mirrored copies of both real clips and both swaps: 4 groups of (real, its swap) for the split by video
    state_p = ddir / "mirrors.json"
    state = json.loads(state_p.read_text()) if state_p.is_file() else {}
    pairs = {}
    for person, fake in ((PERSON_A, a2b_out), (PERSON_B, b2a_out)):
        real_m, fake_m = vdir / f"{person}_mirror.mp4", vdir / f"{fake.stem}_mirror.mp4"
        for src, dst in ((ctx.video(person), real_m), (fake, fake_m)):
            fp = fingerprint(src)
            if not dst.is_file() or state.get(dst.name) != fp:
                mirror_video(src, dst)
                state[dst.name] = fp
                work = True
        labels = json.loads((default_labels_dir(fake) / "labels.json").read_text())
        lp = default_labels_dir(fake_m) / "labels.json"
        lp.parent.mkdir(parents=True, exist_ok=True)
        doc = json.dumps(mirror_labels(labels, real_m, probe(fake).width), indent=1).encode()
        if not lp.is_file() or lp.read_bytes() != doc:
            atomic_write_bytes(lp, doc)
        pairs[person] = (real_m, fake_m)
    atomic_write_bytes(state_p, json.dumps(state, indent=2).encode())
    real = [ctx.video(PERSON_A), ctx.video(PERSON_B), pairs[PERSON_A][0], pairs[PERSON_B][0]]
    fake = [a2b_out, b2a_out, pairs[PERSON_A][1], pairs[PERSON_B][1]]
    # the split is by group (a swap goes with its source); pick the seed that holds out A's pair, so the
    # two clips scored below were never trained on
    plans = D.plan_videos(real, fake)
    group_a = next(v.group for v, _ in plans if v.path == str(ctx.video(PERSON_A).resolve()))
    split = (0.7, 0.15, 0.15)
    seed = next(sd for sd in range(1000) if D.assign_splits([v.group for v, _ in plans], split, sd)[group_a] == "test")
    ds_dir = ddir / "dataset"
    ds_sum = D.build_dataset(real, fake, ds_dir, D.DatasetSettings(frames=nf, split=split, seed=seed))
    work = work or ds_sum.videos_resumed < ds_sum.videos
    for w in ds_sum.warnings:
        ctx.say(f"[yellow]warning:[/] {w}")
    c = ds_sum.counts
    ctx.say(f"dataset {ds_dir}: {ds_sum.samples} face crops of {ds_sum.videos} videos (the 2 clips, their 2 swaps "
            f"and mirror images of all 4), {nf} frames each, split by video: "
            + ", ".join(f"{sp} {c[sp]['real']} real/{c[sp]['fake']} fake" for sp in ("train", "val", "test")))
    # a tiny detector: seconds of training from random init
    det_dir = ddir / "detector"
    ts = TrainSettings(**DETECT_ARCH, epochs=o.detect_epochs, device=o.device)
    try:
        tr = train_detector(ds_dir, det_dir, ts)
    except InputError as e:
        if "other settings" not in str(e):
            raise
        ts.overwrite = True     # the dataset or settings changed since the last run: train afresh
        tr = train_detector(ds_dir, det_dir, ts)
    work = work or tr.epochs_run > 0
    last = tr.history[-1] if tr.history else {}
    auc = "-" if tr.best_val_auc is None else f"{tr.best_val_auc:.2f}"
    ctx.say(f"detector {det_dir}: {DETECT_ARCH['arch']} @ {DETECT_ARCH['input_size']} px from random init, "
            f"{len(tr.history)} epochs"
            + (f" ({tr.epochs_run} now, {tr.seconds:.1f} s)" if tr.epochs_run else " (done earlier)")
            + f" on {tr.train_samples} crops, val AUC {auc}, threshold {tr.threshold:.3f}"
            + (f", last train loss {last['train_loss']:.3f}" if last.get("train_loss") is not None else ""))
    # score the swapped output, its real source, and a partial swap (A->B in the first half only), whose
    # labels let `score` say how well its timeline finds the swapped frames
    half = f"0-{o.frames // 2 - 1}"
    _convert_once(ctx, PERSON_A, "a2b", "convert A->B, first half", frames=half, name=f"{PERSON_A}_a2b_partial")
    partial_out = ctx.path("outputs", f"{PERSON_A}_a2b_partial.mp4")
    det = Detector(det_dir)
    wsha = hashlib.sha256((det_dir / "model.safetensors").read_bytes()).hexdigest()
    scores = {}
    for kind, video in (("swapped", a2b_out), ("real", ctx.video(PERSON_A)), ("partial", partial_out)):
        sp = ddir / "scores" / f"{video.stem}.json"
        key = {"detector": wsha, "video": fingerprint(video), "frames": nf, "truth": 1}
        vs = None
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
        ctx.say(f"score {video.name} ({kind}): [bold]{vs['verdict'].upper()}[/] {vs['score']:.3f} vs threshold "
                f"{vs['threshold']:.3f} ({'right' if right else 'WRONG'}); {len(vs['timeline'])} frames, P(fake) "
                f"min/mean/max {min(probs):.2f}/{sum(probs) / len(probs):.2f}/{max(probs):.2f}, "
                f"{strip.count('#')} frames over the threshold |{strip}|")
        g = vs.get("ground_truth") if kind == "partial" else None     # the full swap's frames are all swapped
        if g:
            f3 = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            ctx.say(f"  vs its labels (frames {g['swapped_frames']} swapped): frame AUC {f3(g['frame_auc'])}, "
                    f"flagged-vs-swapped IoU {f3(g['iou'])} (precision {f3(g['precision'])}, "
                    f"recall {f3(g['recall'])})")
        scores[kind] = {"video": str(video), "json": str(sp), "verdict": vs["verdict"], "score": vs["score"],
                        "threshold": vs["threshold"], "frames": len(vs["timeline"]), "frames_fake": strip.count("#"),
                        "timeline": strip, "right": right, "ground_truth": g}
    note = (f"a demonstration of the pipeline, not a trustworthy detector: {tr.train_samples} training crops of "
            f"2 people, seconds of training from random init (see docs/detect.md)")
    ctx.say(f"[yellow]note:[/] {note}")
    res.resumed = not work
    trained = c["train"]["real"] > 0 and c["train"]["fake"] > 0 and c["test"]["real"] > 0 and c["test"]["fake"] > 0
    res.ok = trained and all(s["frames"] == nf for s in scores.values())
    res.lines.append(f"{ds_sum.samples} crops of {ds_sum.videos} videos split by video; {DETECT_ARCH['arch']} "
                     f"@ {DETECT_ARCH['input_size']} px, {len(tr.history)} epochs, val AUC {auc}")
    for kind, s in scores.items():
        res.lines.append(f"{Path(s['video']).name} ({kind}): {s['verdict']} {s['score']:.2f} "
                         f"(thr {s['threshold']:.2f}, {'right' if s['right'] else 'wrong'}), "
                         f"{s['frames_fake']}/{s['frames']} frames over |{s['timeline']}|")
        if s["ground_truth"] and s["ground_truth"]["frame_auc"] is not None:
            res.lines.append(f"  partial swap, frames {s['ground_truth']['swapped_frames']}: "
                             f"frame AUC {s['ground_truth']['frame_auc']:.2f} against its labels")
    res.lines.append(f"[dim]{note}[/]")
    ctx.data["detect"] = {"dataset": str(ds_dir), "detector": str(det_dir), "seed": seed, "counts": c,
                          "b2a_output": str(b2a_out), "b2a_frames_swapped": b2a["counts"]["frames_swapped"],
                          "epochs": len(tr.history), "val_auc": tr.best_val_auc, "threshold": tr.threshold,
                          "scores": scores, "note": note}


# ---- the pipeline ---------------------------------------------------------------------------------

STEPS: List[Step] = [
    Step("videos", "Sample videos from the built-in real photos", _step_videos),
    Step("extract", "Extract faces (dlib HOG, 68 landmarks, alignment, embeddings)", _step_extract),
    Step("train", "Train the 'original' swap model (time-limited)", _step_train),
    Step("keys", "Create a provenance identity", _step_keys),
    Step("convert", "Convert A's clip A->B: swapped video + labels + masks, C2PA-signed", _step_convert),
    Step("verify", "Verify the signed output against the trust anchor", _step_verify),
    Step("tags", "Footage tags: tag a source video, check it and a tampered copy", _step_tags),
    Step("detect", "Detect: dataset from these clips, a tiny detector, score the swap and its source", _step_detect),
]

# stages not built yet: listed in the summary so the demo says what is coming (none at the moment)
PLANNED: List[tuple] = []


def validate_options(opts: DemoOptions) -> None:
    """Every option checked before the demo makes or removes anything: a bad one is an InputError up
    front, not a failure at the step that first uses it after minutes of work."""
    if opts.time_limit <= 0:
        raise InputError("the training time limit must be positive")
    if not 10 <= opts.frames <= 2000:
        raise InputError("--frames must be between 10 and 2000")
    if opts.tamper_frame is not None and not 0 <= opts.tamper_frame < opts.frames:
        raise InputError(f"the tampered frame must be in 0..{opts.frames - 1}")
    if opts.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {opts.batch_size}")
    if opts.jobs is not None and opts.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {opts.jobs}")
    if not 32 <= opts.size <= 1024:
        raise InputError(f"the crop size must be between 32 and 1024, got {opts.size}")
    if not opts.lr > 0:
        raise InputError(f"the learning rate must be positive, got {opts.lr}")
    if opts.detect_frames < 1 or opts.detect_epochs < 1:
        raise InputError("detect_frames and detect_epochs must be >= 1")
    out = Path(opts.out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output is not a folder: {out}")
    from .device import resolve_device     # what train, convert and detect use (imports torch)

    try:
        resolve_device(opts.device)
    except RuntimeError as e:      # torch's own complaint about a malformed name, e.g. cuda:x
        raise InputError(f"bad --device {opts.device!r}: {e}") from None


def run_demo(opts: Optional[DemoOptions] = None, console=None, steps: Optional[List[Step]] = None) -> DemoResult:
    """Run the demo into `opts.out_dir`; returns what each step found (also written to DIR/summary.json)."""
    opts = opts or DemoOptions()
    validate_options(opts)
    out = Path(opts.out_dir)
    if opts.fresh:
        for name in OWNED:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if console is None:
        from rich.console import Console
        console = Console(highlight=False)
    ctx = Context(opts, console)
    result = DemoResult(str(out), data=ctx.data)
    steps = list(STEPS if steps is None else steps)
    t0 = time.perf_counter()
    console.rule(f"[bold]veriswap demo[/] -> {out}")
    for i, step in enumerate(steps, 1):
        console.print(f"\n[bold cyan][{i}/{len(steps)}] {step.title}[/]")
        res = StepResult(step.name, step.title)
        ts = time.perf_counter()
        step.run(ctx, res)
        res.seconds = time.perf_counter() - ts
        result.steps.append(res)
    result.seconds = time.perf_counter() - t0
    from .video import atomic_write_bytes
    atomic_write_bytes(out / SUMMARY_FILE, json.dumps(result.to_dict(), indent=2, default=str).encode())
    print_summary(result, console)
    return result


def print_summary(result: DemoResult, console) -> None:
    from rich.table import Table

    t = Table(title=f"veriswap demo: {'all checks passed' if result.ok else 'SOME CHECKS FAILED'}"
                    f" in {result.seconds:.0f} s", show_lines=False, title_justify="left")
    t.add_column("step", style="bold")
    t.add_column("s", justify="right")
    t.add_column("result")
    for s in result.steps:
        mark = "" if s.ok else "[red]FAILED[/] "
        when = "done earlier" if s.resumed else (f"{s.seconds:.1f}" if s.seconds < 10 else f"{s.seconds:.0f}")
        t.add_row(s.name, when, mark + "\n".join(s.lines))
    for name, what in PLANNED:
        t.add_row(f"[dim]{name}[/]", "", f"[dim]not built yet: {what}[/]")
    console.print()
    console.print(t)
    d = result.data
    files = []
    if "train" in d:
        files.append(f"preview    {d['train']['preview']}")
    if "convert" in d:
        files.append(f"swapped    {d['convert']['output']}  (labels: {d['convert']['labels']})")
    if "verify" in d:
        files.append(f"  try      veriswap provenance verify {d['verify']['file']} --trust-anchor {d['verify']['trust_anchor']}")
    if "tags" in d:
        files.append(f"  try      veriswap provenance check {d['tags']['tampered_video']} --tags {d['tags']['tags']}"
                     f" --key {d['keys']['tag_key']}")
    if "detect" in d:
        files.append(f"  try      veriswap detect score {d['convert']['output']} -d {d['detect']['detector']}"
                     f" --report {Path(result.out_dir) / 'detect' / 'report'}   (timeline + Grad-CAM heatmaps)")
    files.append(f"summary    {Path(result.out_dir) / SUMMARY_FILE}  (re-run to resume; --time-limit to train longer)")
    for line in files:
        console.print(line, highlight=False, soft_wrap=True)

"""`veriswap demo` end to end on the built-in real faces, with a 1-second training budget.

Checks what a newcomer would look at: faces of both people, a loadable model, a converted video with
labels and masks, C2PA-signed so that it verifies as trusted only with the anchor (and as invalid once a
byte changes), a tamper check that names the altered frame, and a detect step that builds a dataset
split by video, trains a tiny detector and scores the swap and its source. A second run on the same
folder must resume instead of redoing the work.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from provenance.c2pa_verify import verify_file
from provenance.tags import check_video
from swap import alignments as A
from veriswap.demo import PERSON_A, PERSON_B, DemoOptions, Step, run_demo
from swap.errors import InputError

FRAMES = 20
TAMPER = 12
DETECT = dict(detect_frames=8, detect_epochs=2)     # a smaller detect step than the demo's 16 frames x 5 epochs
VERISWAP = str(Path(sys.executable).with_name("veriswap"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    buf = io.StringIO()
    console = Console(file=buf, width=120, highlight=False)
    opts = DemoOptions(out_dir=str(out), time_limit=1.0, frames=FRAMES, tamper_frame=TAMPER, progress=False, **DETECT)
    result = run_demo(opts, console=console)
    return out, result, buf.getvalue()


def test_demo_passes_and_prints_a_summary(demo):
    out, result, text = demo
    assert result.ok, text
    assert [s.name for s in result.steps] == ["videos", "extract", "train", "keys", "convert", "verify",
                                              "watermark", "tags", "detect"]
    assert "all checks passed" in text
    assert "not built yet" not in text and "not a trustworthy detector" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is True and summary["data"]["verify"]["state"] == "trusted"
    # a stripped + CRF 28 copy of the swap: no manifest left, the watermark leads back to it
    wm = summary["data"]["watermark"]
    assert wm["verify_state"] == "no-manifest" and wm["recovered_state"] == "intact-trusted"
    assert "manifest recovered from the store: signed by" in text


def test_faces_of_both_people_are_extracted(demo):
    out, result, _ = demo
    from swap.faces import FaceAnalyzer, distance
    from swap.samples import load_photo

    ref = FaceAnalyzer().reference_embedding(load_photo(PERSON_A))
    for person in (PERSON_A, PERSON_B):
        fdir = out / "faces" / person
        doc = json.loads((fdir / "faces.json").read_text())
        # one face per frame: the astronaut's second (false) detection is dropped by the reference filter
        assert len(doc["faces"]) == FRAMES, person
        assert sorted(e["frame"] for e in doc["faces"].values()) == list(range(FRAMES))
        for name, e in doc["faces"].items():
            assert (fdir / name).is_file() and name.startswith(f"{person}_")
            assert np.asarray(e["landmarks"]).shape == (68, 2)
        aln = A.load(fdir / "alignments.json")
        (src,) = aln.sources.values()
        assert src.complete and len(src.frames) == FRAMES
        d = [distance(np.asarray(e["embedding"]), ref) for e in doc["faces"].values()]
        if person == PERSON_A:
            assert max(d) < 0.6          # same person as the photo
        else:
            assert min(d) > 0.6          # Grace Hopper is someone else


def test_model_checkpoint_loads_and_swaps(demo):
    out, result, _ = demo
    from swap.models import load_model, swap_crop
    from swap.video import read_image

    model, config = load_model(out / "model")
    assert config["architecture"] == "original" and config["resolution"] == 64
    assert {k: v["name"] for k, v in config["identities"].items()} == {"a": PERSON_A, "b": PERSON_B}
    state = json.loads((out / "model" / "state.json").read_text())
    assert state["iteration"] >= 1 and (out / "model" / "preview.png").stat().st_size > 0
    crop = read_image(sorted((out / "faces" / PERSON_A).glob("*.png"))[0])
    swapped, mask = swap_crop(model, config, crop, "a2b")
    assert swapped.shape == crop.shape and mask is None and not np.array_equal(swapped, crop)


def test_converted_video_has_labels_and_masks(demo):
    out, result, _ = demo
    import av
    import cv2

    video = out / "outputs" / f"{PERSON_A}_a2b.mp4"
    labels = json.loads((out / "outputs" / f"{PERSON_A}_a2b.labels" / "labels.json").read_text())
    assert labels["counts"]["frames"] == FRAMES and labels["counts"]["frames_swapped"] == FRAMES
    assert labels["direction"] == "a2b" and labels["model"]["identities"] == {"a": PERSON_A, "b": PERSON_B}
    for fr in labels["frames"]:
        (face,) = fr["faces"]
        mask = cv2.imread(str(video.parent / f"{PERSON_A}_a2b.labels" / fr["mask"]), cv2.IMREAD_GRAYSCALE)
        x0, y0, x1, y1 = (int(v) for v in face["box"])
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        assert mask.shape == (480, 640) and mask[cy, cx] > 200 and mask[5, 5] == 0   # face centre, corner
    with av.open(str(video)) as c:
        assert c.streams.video[0].width == 640 and c.streams.audio
        assert sum(1 for _ in c.decode(video=0)) == FRAMES


def test_signed_output_is_trusted_only_with_the_anchor(demo):
    out, result, _ = demo
    signed = out / "outputs" / f"{PERSON_A}_a2b.mp4"
    anchor = out / "keys" / "root.pem"
    r = verify_file(signed, [anchor])
    assert r.state == "trusted", r.failures
    assert r.ai_generated and any(s.endswith("compositeWithTrainedAlgorithmicMedia") for s in r.digital_source_types)
    sha = json.loads((out / "model" / "config.json").read_text())["weights"]["sha256"]
    assert r.swap["model_hash"] == f"sha256:{sha}" and r.swap["frames_swapped"] == FRAMES
    assert [i["title"] for i in r.ingredients] == [f"{PERSON_A}.mp4"]
    assert verify_file(signed).state == "valid-untrusted"
    bad = verify_file(out / "tamper" / f"{PERSON_A}_a2b.byte-flipped.mp4", [anchor])
    assert bad.state == "invalid" and "assertion.bmffHash.mismatch" in [f.code for f in bad.failures]
    assert result.data["verify"]["state_tampered"] == "invalid"


def test_tamper_check_names_the_altered_frame(demo):
    out, result, _ = demo
    video = out / "videos" / f"{PERSON_A}.mp4"
    tags = Path(str(video) + ".tags")
    key = out / "keys" / "tag.key"
    clean = check_video(video, tags, key)
    assert clean.ok and clean.status == "." * FRAMES
    bad = check_video(out / "tamper" / f"{PERSON_A}.frame{TAMPER}-altered.mp4", tags, key)
    assert not bad.ok
    assert bad.status == "." * TAMPER + "N" + "." * (FRAMES - TAMPER - 1)
    assert bad.first_bad.video_index == TAMPER
    assert result.data["tags"]["first_bad_frame"] == TAMPER


def test_detect_step_builds_a_dataset_trains_and_scores(demo):
    out, result, text = demo
    d = out / "detect"
    ds = json.loads((d / "dataset" / "dataset.json").read_text())
    samples, videos = ds["samples"], ds["videos"]
    assert {x["label"] for x in samples} == {0, 1}
    assert len(videos) == 8 and all((d / "dataset" / x["file"]).is_file() for x in samples)
    # split by video: every crop has its video's split, and a swap shares its source's group and split
    assert all(x["split"] == videos[x["video"]]["split"] for x in samples)
    split_of_group = {}
    for v in videos.values():
        assert split_of_group.setdefault(v["group"], v["split"]) == v["split"]
    assert len(split_of_group) == 4
    for sp in ("train", "test"):
        assert {x["label"] for x in samples if x["split"] == sp} == {0, 1}, sp
    # the scored clips (A's real clip and its swap) are held out in the test split
    by_path = {Path(v["path"]).name: v for v in videos.values()}
    assert by_path[f"{PERSON_A}.mp4"]["split"] == by_path[f"{PERSON_A}_a2b.mp4"]["split"] == "test"
    assert by_path[f"{PERSON_B}_b2a.mp4"]["kind"] == "labels"

    det = d / "detector"
    for name in ("model.safetensors", "config.json", "metrics.json"):
        assert (det / name).is_file() and (det / name).stat().st_size > 0, name
    cfg = json.loads((det / "config.json").read_text())
    assert cfg["arch"] == "resnet10t" and cfg["input_size"] == 96 and cfg["epochs"] == DETECT["detect_epochs"]
    assert json.loads((det / "metrics.json").read_text())["history"]
    card = json.loads((det / "model_card.json").read_text())
    assert card["backbone"]["kind"] == "none" and (det / "MODEL_CARD.md").is_file()
    assert "a demonstration with measured numbers, not a check" in text and "UNCERTAIN because:" in text

    n = DETECT["detect_frames"]
    for name, kind in ((f"{PERSON_A}_a2b", "swapped"), (PERSON_A, "real")):
        sc = json.loads((d / "scores" / f"{name}.json").read_text())
        assert sc["frames_sampled"] == n and len(sc["timeline"]) == n
        assert [f["index"] for f in sc["timeline"]] == sorted(f["index"] for f in sc["timeline"])
        assert sc["verdict"] in ("real", "fake") and sc["fake"] == (sc["verdict"] == "fake")
        assert 0.0 <= sc["score"] <= 1.0 and any(f["faces"] for f in sc["timeline"])
        got = result.data["detect"]["scores"][kind]
        assert got["verdict"] == sc["verdict"] and got["frames"] == n and len(got["timeline"]) == n
        # never a passed check: the tiny detector's card cannot validate a verdict, so it says UNCERTAIN and why
        assert got["judgement"] == "UNCERTAIN" and got["judgement_reasons"]
        assert f"{name}.mp4 ({kind}): UNCERTAIN" in text and f"score vs threshold alone {sc['verdict']}" in text
    # the partial swap (A->B in the first half): its labels say which frames, and score compares its timeline
    half = f"0-{FRAMES // 2 - 1}"
    lab = json.loads((out / "outputs" / f"{PERSON_A}_a2b_partial.labels" / "labels.json").read_text())
    assert [f["swapped"] for f in lab["frames"]] == [i < FRAMES // 2 for i in range(FRAMES)]
    g = json.loads((d / "scores" / f"{PERSON_A}_a2b_partial.json").read_text())["ground_truth"]
    sampled = [f for f in json.loads((d / "scores" / f"{PERSON_A}_a2b_partial.json").read_text())["timeline"]
               if f["prob"] is not None]
    assert g["swapped_frames"] == half and g["frames"] == len(sampled)
    assert g["swapped"] == sum(f["index"] < FRAMES // 2 for f in sampled) and 0 < g["swapped"] < g["frames"]
    assert f"vs its labels (frames {half} swapped): frame AUC" in text


def test_rerun_resumes_instead_of_redoing(demo):
    out, _, _ = demo
    kept = (out / "videos" / f"{PERSON_B}.mp4", out / "model" / "model.safetensors", out / "keys" / "signer.key",
            out / "outputs" / f"{PERSON_A}_a2b.mp4", out / "outputs" / f"{PERSON_B}_b2a.mp4",
            out / "detect" / "detector" / "model.safetensors", out / "detect" / "scores" / f"{PERSON_A}.json",
            out / "outputs" / f"{PERSON_A}_a2b_partial.mp4", out / "detect" / "scores" / f"{PERSON_A}_a2b_partial.json")
    before = {p: p.stat().st_mtime_ns for p in kept}
    again = run_demo(DemoOptions(out_dir=str(out), time_limit=1.0, frames=FRAMES, tamper_frame=TAMPER, progress=False,
                                 **DETECT),
                     console=Console(file=io.StringIO()))
    assert again.ok
    resumed = {s.name: s.resumed for s in again.steps}
    assert resumed["videos"] and resumed["extract"] and resumed["train"] and resumed["keys"] and resumed["convert"]
    assert resumed["detect"]
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert verify_file(out / "outputs" / f"{PERSON_A}_a2b.mp4", [out / "keys" / "root.pem"]).state == "trusted"


def test_bad_device_batch_size_and_jobs_fail_before_any_work(tmp_path):
    ran = []
    probe = [Step("probe", "would do work", lambda ctx, res: ran.append(ctx.opts))]
    quiet = Console(file=io.StringIO())
    d = tmp_path / "d"
    for bad, match in ((dict(device="foo"), "unknown device 'foo'"), (dict(device="tpu"), "unknown device"),
                       (dict(batch_size=0), "--batch-size"), (dict(jobs=0), "--jobs"), (dict(jobs=-2), "--jobs")):
        with pytest.raises(InputError, match=match):
            run_demo(DemoOptions(out_dir=str(d), **bad), console=quiet, steps=probe)
    assert not ran and not d.exists()
    # --fresh with a bad option: the earlier outputs are not removed
    (d / "videos").mkdir(parents=True)
    (d / "videos" / "astronaut.mp4").write_bytes(b"earlier output")
    with pytest.raises(InputError, match="unknown device"):
        run_demo(DemoOptions(out_dir=str(d), device="foo", fresh=True), console=quiet, steps=probe)
    assert not ran and (d / "videos" / "astronaut.mp4").read_bytes() == b"earlier output"
    run_demo(DemoOptions(out_dir=str(d), device="cpu", batch_size=1, jobs=1), console=quiet, steps=probe)
    assert len(ran) == 1        # good options pass the same check
    # the CLI: one line, exit 2, and no sample videos or extract first
    p = subprocess.run([VERISWAP, "demo", "-o", str(tmp_path / "cli"), "--device", "foo"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr == "error: unknown device 'foo': use auto, cpu or cuda\n", p.stderr
    assert p.stdout == "" and not (tmp_path / "cli").exists()


def test_bad_options(tmp_path):
    with pytest.raises(InputError):
        run_demo(DemoOptions(out_dir=str(tmp_path / "d"), frames=3), console=Console(file=io.StringIO()))
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError):
        run_demo(DemoOptions(out_dir=str(tmp_path / "file")), console=Console(file=io.StringIO()))
    p = subprocess.run([VERISWAP, "demo", "-o", str(tmp_path / "d"), "--time-limit", "soon"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip().startswith("error: bad --time-limit") and "Traceback" not in p.stderr
    assert not (tmp_path / "d").exists()

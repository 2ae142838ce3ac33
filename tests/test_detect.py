"""The detect stage on real faces: videos of the astronaut and Grace Hopper (and their mirror images),
fakes made by actually running `swap.convert` with a tiny trained swap model, a face-crop dataset
split by video, a tiny timm detector trained on it, eval metrics, and video scoring."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detect import dataset as D
from detect import metrics as M
from detect.aggregate import RULES, aggregate
from detect.crops import evenly_spaced
from swap.errors import InputError

VERISWAP = str(Path(sys.executable).with_name("veriswap"))
TINY_SWAP = {"resolution": 64, "e_dims": 16, "ae_dims": 64, "d_dims": 16, "mask_dims": 8}
N = 12                  # frames per video
FRAMES = 6              # sampled per video in the dataset
ARCH = dict(arch="resnet10t", input_size=64, batch_size=8, lr=1e-3, epochs=3, augment=0.5, device="cpu",
            pretrained=False)   # no network here: from scratch (tests of the pretrained paths: test_detect_backbone)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """4 real videos (2 people x mirror) and 4 swaps of them made with a tiny swap model."""
    from provenance.keys import generate_identity
    from swap.convert import ConvertSettings, convert
    from swap.samples import load_photo, make_face_video
    from swap.train import TrainConfig, train

    d = tmp_path_factory.mktemp("detect")
    a, g = load_photo("astronaut"), load_photo("grace_hopper")
    photos = {"astronaut": a, "astronaut_flip": a[:, ::-1].copy(), "grace": g, "grace_flip": g[:, ::-1].copy()}
    real = {k: make_face_video(d / "real" / f"{k}.mp4", v, frames=N, audio=False) for k, v in photos.items()}
    ref = d / "astronaut_ref.png"
    cv2.imwrite(str(ref), cv2.cvtColor(a, cv2.COLOR_RGB2BGR))
    # extract in child processes: after an in-process extract (spawned worker pool) torch training in
    # this process ran ~20x slower on 2 cores (measured: 62 s instead of 3 s for the swap model below)
    for args in ([real["astronaut"], real["astronaut_flip"], "-o", d / "fa", "--ref-face", ref],
                 [real["grace"], real["grace_flip"], "-o", d / "fb"]):
        subprocess.run([VERISWAP, "extract", *map(str, args), "--jobs", "1"], check=True, capture_output=True, timeout=300)
    train(TrainConfig(faces_a=str(d / "fa"), faces_b=str(d / "fb"), model_dir=str(d / "model"), model="hq",
                      model_options=dict(TINY_SWAP), batch_size=4, iterations=30, lr=3e-4, save_every=0,
                      preview_every=0, progress=False, identity_check=False, device="cpu"))
    generate_identity(d / "keys", name="detect test")
    fake = {}
    for k, p in real.items():
        src = "fa" if k.startswith("astronaut") else "fb"
        fake[k] = d / "fake" / f"{k}_swap.mp4"
        s = convert(p, d / "model", fake[k], d / src / "alignments.json",
                    ConvertSettings(key_dir=str(d / "keys"), device="cpu", direction="a2b" if src == "fa" else "b2a"))
        assert s.frames_swapped == N
    return {"dir": d, "real": real, "fake": fake}


@pytest.fixture(scope="module")
def ds(world):
    out = world["dir"] / "dataset"
    summ = D.build_dataset([world["dir"] / "real"], [world["dir"] / "fake"], out, D.DatasetSettings(frames=FRAMES))
    return out, summ


@pytest.fixture(scope="module")
def det(ds, world):
    from detect.train import TrainSettings, train_detector

    out = world["dir"] / "detector"
    summ = train_detector(ds[0], out, TrainSettings(**ARCH))
    return out, summ


def _cli(*args: str):
    """Run the real console entry point in-process: (exit code, stdout, stderr) via capture."""
    from veriswap.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(args))
    return e.value.code


# ---- metrics: hand-computed cases -------------------------------------------------------------

def test_metrics_match_hand_computed_values():
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert M.auc(y, s) == pytest.approx(0.75)                       # 3 of 4 (pos, neg) pairs ordered
    assert M.average_precision(y, s) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert M.eer(y, s) == (pytest.approx(0.5), pytest.approx(0.4))
    # negatives .1 .2 .6, positives .3 .7 .8: 8 of 9 pairs ordered; FPR = FNR = 1/3 at threshold .6
    y2, s2 = [0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.6, 0.3, 0.7, 0.8]
    assert M.auc(y2, s2) == pytest.approx(8 / 9)
    assert M.eer(y2, s2) == (pytest.approx(1 / 3), pytest.approx(0.6))
    assert M.accuracy(y2, s2, 0.5) == pytest.approx(4 / 6) and M.accuracy(y2, s2, 0.25) == pytest.approx(5 / 6)
    t, bacc = M.best_threshold(y2, s2)
    assert bacc == pytest.approx(5 / 6) and M.balanced_accuracy(y2, s2, t) == pytest.approx(5 / 6)
    # ties: one threshold step (AUC counts a tie as half, AP takes the whole tied group at once)
    assert M.auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert M.average_precision([0, 1, 1], [0.5, 0.5, 0.9]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert M.auc([0, 1], [0.2, 0.9]) == 1.0 and M.auc([1, 0], [0.2, 0.9]) == 0.0
    assert M.eer([0, 1], [0.2, 0.9])[0] == 0.0
    assert M.auc([1, 1], [0.2, 0.9]) is None and M.eer([0, 0], [0.1, 0.2]) == (None, None)
    with pytest.raises(ValueError):
        M.auc([0, 2], [0.1, 0.2])


def test_auc_equals_pairwise_probability_on_random_scores_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 40)
        y[:2] = (0, 1)
        s = rng.integers(0, 8, 40) / 8.0                              # many ties
        pos, neg = s[y == 1], s[y == 0]
        pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        assert M.auc(y, s) == pytest.approx(pairs)
        e, t = M.eer(y, s)
        assert 0.0 <= e <= 1.0


def test_aggregation_rules():
    assert {"mean", "confident", "max", "median"} <= set(RULES)
    p = np.r_[np.full(15, 0.9), np.full(17, 0.5)]                   # a strong fake stretch: not diluted
    assert aggregate(p, "confident") == pytest.approx(0.9) and aggregate(p, "mean") < 0.7
    q = np.r_[np.full(30, 0.1), np.full(2, 0.6)]                    # a clean video stays clean
    assert aggregate(q, "confident") == pytest.approx(0.1)
    r = np.linspace(0.3, 0.7, 32)
    assert aggregate(r, "confident") == pytest.approx(0.5)
    assert evenly_spaced(range(12), 6) == [0, 2, 4, 7, 9, 11] and evenly_spaced(range(3), 32) == [0, 1, 2]


# ---- dataset ----------------------------------------------------------------------------------

def test_dataset_is_split_by_video_and_source_without_leakage(ds, world):
    root, summ = ds
    data = D.load(root)
    assert summ.videos == 8 and len(data.videos) == 8
    by_video = {}
    for s in data.samples:
        by_video.setdefault(s.video, set()).add(s.split)
        assert s.split == data.videos[s.video].split
    assert all(len(v) == 1 for v in by_video.values())               # never split inside a video
    for v in data.videos.values():                                   # a swap shares its source's split
        if v.kind == "labels":
            src = next(w for w in data.videos.values() if w.path == v.group)
            assert src.split == v.split and src.label == 0 and v.label == 1
    assert {v.split for v in data.videos.values()} == {"train", "val", "test"}
    for sp in ("train", "test"):
        assert {s.label for s in data.split(sp)} == {0, 1}
    # deterministic, independent of input order
    groups = [v.group for v in data.videos.values()]
    assert D.assign_splits(groups) == D.assign_splits(groups[::-1])
    # fakes: only swapped faces, on evenly spaced swapped frames
    for v in data.videos.values():
        frames = sorted({s.frame for s in data.samples if s.video == v.id})
        assert frames == evenly_spaced(range(N), FRAMES)
        if v.kind == "labels":
            assert v.samples == FRAMES                               # one swapped face per frame
    assert summ.counts == data.counts()


def test_crf_dataset_crops_come_from_compressed_copies_with_the_same_frames(world, tmp_path):
    """FaceForensics++'s c23/c40: the same frames and faces, from an H.264 copy at that CRF (less detail)."""
    def build(out, crf):
        D.build_dataset([world["real"]["grace"]], [world["fake"]["grace"]], out, D.DatasetSettings(frames=3, crf=crf))
        return D.load(out)
    plain, c40 = build(tmp_path / "c0", None), build(tmp_path / "c40", 40)
    key = lambda d: sorted((x.file, x.label) for x in d.samples)  # noqa: E731
    assert key(plain) == key(c40) and len(plain.samples) >= 4

    def detail(root, x):
        g = cv2.cvtColor(cv2.imread(str(root / x.file)), cv2.COLOR_BGR2GRAY)
        return cv2.Laplacian(g, cv2.CV_64F).var()
    ratio = np.median([detail(tmp_path / "c40", x) / detail(tmp_path / "c0", x) for x in plain.samples])
    assert ratio < 0.8, ratio                        # c40 smooths away detail
    assert not list((tmp_path / "c40").rglob("*.crf40.mp4"))   # the compressed copies are not kept
    with pytest.raises(InputError, match="--crf"):
        build(tmp_path / "bad", 60)


def test_crops_contain_the_face(ds):
    from swap.faces import detect as dlib_detect

    root, _ = ds
    data = D.load(root)
    main = [s for s in data.samples if s.face == 0]
    assert main
    for s in main:
        img = cv2.imread(str(root / s.file))
        assert img.shape == (256, 256, 3)
        pts = np.asarray(s.landmarks)
        assert pts.shape == (68, 2) and (pts > 0).all() and (pts < 256).all()
        cx, cy = pts.mean(0)
        assert abs(cx - 128) < 40 and abs(cy - 128) < 50              # face centred
        assert 0.5 < (pts[:, 0].max() - pts[:, 0].min()) / 256 < 0.97    # 1.3x the (tight) dlib box
    for s in [s for s in main if s.label == 0][::5]:                  # dlib finds the face in real crops
        rgb = cv2.cvtColor(cv2.imread(str(root / s.file)), cv2.COLOR_BGR2RGB)
        boxes = dlib_detect(rgb, "hog", 1)
        assert any(b[0] < 128 < b[2] and b[1] < 128 < b[3] for b in boxes), s.file


def test_dataset_resumes_and_redoes_damaged_videos(ds, world):
    root, _ = ds
    before = json.loads((root / "dataset.json").read_text())
    victim = before["samples"][0]
    (root / victim["file"]).unlink()
    summ = D.build_dataset([world["dir"] / "real"], [world["dir"] / "fake"], root, D.DatasetSettings(frames=FRAMES))
    assert summ.videos_resumed == 7                                   # only the damaged video is redone
    assert (root / victim["file"]).is_file()
    assert json.loads((root / "dataset.json").read_text())["samples"] == before["samples"]


# ---- training ---------------------------------------------------------------------------------

def test_training_loss_falls_and_writes_a_detector_folder(det, ds):
    out, summ = det
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "veriswap-detector" and cfg["arch"] == "resnet10t" and cfg["input_size"] == 64
    assert len(cfg["mean"]) == 3 and len(cfg["std"]) == 3 and 0.0 < cfg["threshold"] < 1.0
    assert cfg["threshold_method"] == "balanced_accuracy" and cfg["weights_init"] is None
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == ARCH["epochs"] and metrics["best_epoch"] == cfg["best_epoch"]
    assert metrics["val"]["threshold"] == pytest.approx(cfg["threshold"])
    losses = np.loadtxt(out / "loss.csv", delimiter=",", skiprows=1)[:, 2]
    assert len(losses) >= 9
    assert losses[-3:].mean() < losses[:3].mean(), losses
    from safetensors.torch import load_file

    sd = load_file(str(out / "model.safetensors"))
    assert sd["fc.weight"].shape == (1, 512)                          # one logit


def test_training_resumes_to_the_same_result(det, ds, tmp_path):
    from detect.train import TrainSettings, train_detector

    first = train_detector(ds[0], tmp_path / "d", TrainSettings(**{**ARCH, "epochs": 1}))
    assert first.epochs_run == 1 and first.epochs_resumed == 0
    two = {**ARCH, "epochs": 2}
    again = train_detector(ds[0], tmp_path / "d", TrainSettings(**two))
    assert again.epochs_resumed == 1 and again.epochs_run == 1
    full = json.loads((det[0] / "metrics.json").read_text())["history"]   # the uninterrupted 3-epoch run
    got = json.loads((tmp_path / "d" / "metrics.json").read_text())["history"]
    assert len(got) == 2
    for a, b in zip(full, got):                                       # as if never interrupted
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-3)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-3)
    done = train_detector(ds[0], tmp_path / "d", TrainSettings(**two))
    assert done.epochs_run == 0
    with pytest.raises(InputError, match="other settings"):
        train_detector(ds[0], tmp_path / "d", TrainSettings(**{**two, "lr": 5e-4}))


def test_sbi_makes_blended_fakes_from_real_faces(ds):
    from detect.sbi import self_blend
    from detect.train import CropSet

    root, _ = ds
    data = D.load(root)
    reals = [s for s in data.split("train") if s.label == 0 and s.face == 0]
    s = reals[0]
    img = cv2.cvtColor(cv2.imread(str(root / s.file)), cv2.COLOR_BGR2RGB)
    pts = np.asarray(s.landmarks, np.float32)
    rng = np.random.default_rng(0)
    for _ in range(5):
        out, mask = self_blend(img, pts, rng)
        assert out.shape == img.shape and 0.0 <= mask.min() and mask.max() <= 1.0
        assert mask[:10, :10].max() == 0 and mask[-10:, -10:].max() == 0        # corners untouched
        cx, cy = pts[27:36].mean(0).astype(int)                                   # nose: inside the blend
        assert mask[cy, cx] > 0.2
        assert np.abs(out.astype(int) - img.astype(int)).mean() > 0.5
    train_s = data.split("train")
    cs = CropSet(root, train_s, 64, (0.5,) * 3, (0.5,) * 3, True, True, 1.0)
    n_real = sum(1 for x in train_s if x.label == 0)
    assert len(cs) == len(train_s) + n_real
    x, y = cs[len(train_s)]                                          # the first self-blended item
    assert tuple(x.shape) == (3, 64, 64) and float(y) == 1.0


# ---- eval and score ---------------------------------------------------------------------------

def test_eval_reports_frame_and_video_metrics(det, ds, capsys):
    from detect.evaluate import evaluate, video_scores
    from detect.model import Detector

    root, _ = ds
    rep = evaluate(root, det[0])
    data = D.load(root)
    test = data.split("test")
    dt = Detector(det[0])
    crops = [cv2.cvtColor(cv2.imread(str(root / s.file)), cv2.COLOR_BGR2RGB) for s in test]
    p = dt.predict(crops, batch_size=5)
    y = [s.label for s in test]
    assert rep.frame == M.compute(y, p, dt.threshold).to_dict()
    assert rep.frame["n"] == len(test) and 0 < rep.frame["n_fake"] < len(test)
    vs = video_scores(test, p)
    assert rep.videos == len({s.video for s in test}) == len(vs)
    assert rep.video["auc"] == pytest.approx(M.auc([v["label"] for v in vs.values()], [v["score"] for v in vs.values()]))
    assert _cli("detect", "eval", str(root), "-d", str(det[0]), "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["frame"]["auc"] == pytest.approx(rep.frame["auc"]) and doc["split"] == "test"
    # per manipulation method (DeepfakeBench's per-method table): the swaps' model and direction from their labels
    sha = json.loads((det[0].parent / "model" / "config.json").read_text())["weights"]["sha256"][:8]
    methods = {v.method for v in data.videos.values() if v.label == 1}
    assert methods == {f"veriswap hq {sha} a2b", f"veriswap hq {sha} b2a"}
    assert {v.method for v in data.videos.values() if v.label == 0} == {None}
    for m, r in rep.per_method.items():
        keep = [i for i, x in enumerate(test) if x.label == 0 or data.videos[x.video].method == m]
        assert r["frame_auc"] == pytest.approx(M.auc([y[i] for i in keep], p[keep]))
        assert r["fake_videos"] == len({x.video for x in test if x.label == 1 and data.videos[x.video].method == m})
    assert set(rep.per_method) == {data.videos[x.video].method for x in test if x.label == 1}
    assert _cli("detect", "eval", str(root), "-d", str(det[0])) == 0
    out = capsys.readouterr().out
    assert "per method (its fakes vs all reals)" in out
    # eval writes the model card (training data, backbone, held-out results) and prints its key lines
    card = json.loads((det[0] / "model_card.json").read_text())
    assert (det[0] / "MODEL_CARD.md").is_file() and "model card:" in out and "held-out video AUC" in out
    assert card["backbone"]["kind"] == "none" and card["training"]["method_families"] == ["autoencoder"]
    assert set(card["results"]) == {"original", "crf23", "crf40", "0.5x", "crf40+0.5x"}
    # --leave-out-method: the method must be in the eval set and must not have been trained on
    assert _cli("detect", "eval", str(root), "-d", str(det[0]), "--no-card", "--leave-out-method", "graphic") == 2
    assert _cli("detect", "eval", str(root), "-d", str(det[0]), "--no-card", "--leave-out-method", "autoencoder") == 2
    assert "trained on it" in capsys.readouterr().err


def _with_threshold(det_dir: Path, dst: Path, thr: float) -> Path:
    shutil.copytree(det_dir, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["threshold"] = thr
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_score_timeline_report_and_exit_codes(det, world, tmp_path, capsys):
    real, fake = world["real"]["grace"], world["fake"]["astronaut"]
    rep = tmp_path / "report"
    code = _cli("detect", "score", str(real), str(fake), "-d", str(det[0]), "--frames", "5",
                "--report", str(rep), "--json", "--no-progress")
    res = json.loads(capsys.readouterr().out)
    assert code == (1 if any(r["judgement"]["label"] == "FAKE" for r in res) else 0)
    # the tiny detector's card (written by the eval test) or none at all: never a FAKE / REAL verdict
    assert all(r["judgement"]["label"] == "UNCERTAIN" and r["judgement"]["reasons"] for r in res)
    for r in res:
        assert [f["index"] for f in r["timeline"]] == evenly_spaced(range(N), 5)   # one entry per sampled frame
        assert all(f["prob"] == max(x["prob"] for x in f["faces"]) for f in r["timeline"] if f["faces"])
        main = max(r["tracks"], key=lambda t: t["frames"])
        assert main["frames"] >= 4 and main["decisive"]               # the person keeps one track id
        assert r["verdict"] == ("fake" if r["score"] >= r["threshold"] else "real")
    stem = real.stem
    rows = (rep / f"{stem}.timeline.csv").read_text().splitlines()
    assert rows[0].startswith("frame,time,track,prob") and len(rows) >= 6
    png = cv2.imread(str(rep / f"{stem}.timeline.png"))
    assert png is not None and png.shape[1] > 400
    doc = json.loads((rep / f"{stem}.json").read_text())
    assert doc["verdict"] in ("real", "fake")
    # Grad-CAM of each track's (up to) 3 most suspicious frames: the crop beside its heatmap
    tracks = {t["track"]: t["frames"] for t in doc["tracks"]}
    assert sorted(h["track"] for h in doc["heatmaps"]) == sorted(t for t, n in tracks.items() for _ in range(min(3, n)))
    for h in doc["heatmaps"]:
        probs = [f["prob"] for fr in doc["timeline"] for f in fr["faces"] if f["track"] == h["track"]]
        assert h["prob"] >= sorted(probs)[-min(3, len(probs))] - 1e-6        # among the track's top 3
        img = cv2.imread(str(rep / h["file"]))
        assert img.shape[1] == 2 * img.shape[0] and len(h["crop_matrix"]) == 2
    # exit codes follow the honest verdict: without a card UNCERTAIN (exit 0) even at threshold 0; with a card
    # that validates unseen identities and cross-method, everything fake above threshold 0, nothing at the
    # highest threshold config.json allows (1.0)
    always = _with_threshold(det[0], tmp_path / "always", 0.0)
    never = _with_threshold(det[0], tmp_path / "never", 1.0)
    for d in (always, never):
        for f in ("model_card.json", "MODEL_CARD.md"):
            (d / f).unlink(missing_ok=True)
    assert _cli("detect", "score", str(real), "-d", str(always), "--frames", "3", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "UNCERTAIN" in out and "no model card" in out
    for d in (always, never):
        _validated_card().save(d)
    assert _cli("detect", "score", str(real), "-d", str(always), "--frames", "3", "--no-progress") == 1
    assert _cli("detect", "score", str(real), "-d", str(never), "--frames", "3", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "FAKE" in out and "REAL" in out and "model card:" in out


def _validated_card():
    """A card whose held-out figures pass the verdict rule (constructed: the tiny detector's own would not)."""
    from detect import card as C

    vids = [C.VideoResult(f"r{k}", 0, 0.2, [0.2], None, ["nobody-seen"]) for k in range(3)] + \
           [C.VideoResult(f"f{k}", 1, 0.8, [0.8], "veriswap graphic-faceswap x a2b", ["nobody-seen"]) for k in range(3)]
    res = {"original": C.condition_result(vids, ["astronaut"], ["veriswap hq x a2b"])}
    return C.ModelCard("det", "resnet10t", 64, {}, {"method_families": ["autoencoder"]}, {}, res,
                       {"threshold": 0.5}, C.false_positives(vids, ["astronaut"], 0.5))


def test_ground_truth_comparison_hand_computed():
    from types import SimpleNamespace as F

    from detect.truth import compare
    probs = [0.1, 0.2, 0.7, 0.9, 0.4, 0.8, None, 0.3]           # frame 6: no face found
    timeline = [F(index=2 * i, prob=p) for i, p in enumerate(probs)]
    labels = {"frames": [{"index": i, "swapped": 4 <= i <= 11} for i in range(16)]}
    g = compare(timeline, labels, 0.5, "x/labels.json")
    # scored: 0 .1, 2 .2, 4 .7*, 6 .9*, 8 .4*, 10 .8*, 14 .3 (* swapped): flagged 4, 6, 10
    assert (g.swapped_frames, g.frames, g.swapped, g.flagged) == ("4-11", 7, 4, 3)
    assert (g.precision, g.recall, g.iou) == (1.0, 0.75, 0.75)
    assert g.frame_auc == 1.0                                    # every swapped frame above every real one
    g = compare(timeline, {"frames": [{"index": i, "swapped": False} for i in range(16)]}, 0.5, "y")
    assert g.frame_auc is None and g.recall is None and g.precision == 0.0 and g.iou == 0.0


def test_score_compares_a_partial_swap_with_its_labels(det, world, tmp_path, capsys):
    from swap.convert import ConvertSettings, convert

    d = world["dir"]
    part = tmp_path / "grace_part.mp4"
    convert(world["real"]["grace"], d / "model", part, d / "fb" / "alignments.json",
            ConvertSettings(key_dir=str(d / "keys"), device="cpu", direction="b2a", frames="0-5"))
    rep = tmp_path / "report"
    _cli("detect", "score", str(part), str(world["real"]["grace"]), "-d", str(det[0]), "--frames", "8",
         "--report", str(rep), "--json", "--no-progress")
    res = json.loads(capsys.readouterr().out)
    g = res[0]["ground_truth"]
    sampled = [f for f in res[0]["timeline"] if f["prob"] is not None]
    y = [int(f["index"] <= 5) for f in sampled]
    assert g["swapped_frames"] == "0-5" and g["labels"].endswith("grace_part.labels/labels.json")
    assert (g["frames"], g["swapped"]) == (len(sampled), sum(y)) and 0 < sum(y) < len(y)
    assert g["frame_auc"] == pytest.approx(M.auc(y, [f["prob"] for f in sampled]), abs=1e-6)
    assert g["flagged"] == sum(f["prob"] >= res[0]["threshold"] for f in sampled)
    assert res[1]["ground_truth"] is None                        # a real video has no labels
    assert json.loads((rep / "grace_part.json").read_text())["ground_truth"] == g
    _cli("detect", "score", str(part), "-d", str(det[0]), "--frames", "4", "--no-progress")
    assert "vs labels: swapped 0-5" in capsys.readouterr().out
    _cli("detect", "score", str(part), "-d", str(det[0]), "--frames", "4", "--no-progress", "--no-labels")
    assert "vs labels" not in capsys.readouterr().out
    # a folder of videos: each one is judged (the swaps' labels sit beside them)
    _cli("detect", "score", str(world["dir"] / "fake"), "-d", str(det[0]), "--frames", "2", "--json", "--no-progress")
    res = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["path"]).name for r in res) == sorted(p.name for p in world["fake"].values())
    assert all(r["ground_truth"]["swapped_frames"] == f"0-{N - 1}" for r in res)


def test_score_in_python_finds_the_swap(det, world):
    from detect.model import Detector
    from detect.score import score_video

    d = Detector(det[0])
    fake = score_video(world["fake"]["grace"], d, frames=4)
    real = score_video(world["real"]["grace"], d, frames=4)
    assert len(fake.timeline) == len(real.timeline) == 4
    assert fake.tracks[0].mean > real.tracks[0].mean                # the swapped face scores higher


def test_bad_inputs_exit_2_with_one_line(det, ds, world, tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    bad_cfg = tmp_path / "bad_det"
    bad_cfg.mkdir()
    (bad_cfg / "config.json").write_text("{nope")
    photo = world["dir"] / "astronaut_ref.png"
    cases = [
        ("detect", "score", str(tmp_path / "missing.mp4"), "-d", str(det[0])),
        ("detect", "score", str(junk), "-d", str(det[0])),
        ("detect", "score", str(world["real"]["grace"]), "-d", str(bad_cfg)),
        ("detect", "score", str(world["real"]["grace"]), "-d", str(ds[0])),
        ("detect", "score", str(world["real"]["grace"]), "-d", str(det[0]), "--rule", "vote"),
        ("detect", "score", str(world["real"]["grace"]), "-d", str(det[0]), "--report", str(tmp_path / "r"),
         "--heatmaps", "-1"),
        ("detect", "dataset", "--real", str(photo), "-o", str(tmp_path / "x")),
        ("detect", "dataset", "-o", str(tmp_path / "y")),
        ("detect", "train", str(tmp_path), "-o", str(tmp_path / "z")),
        ("detect", "eval", str(ds[0]), "-d", str(bad_cfg)),
        ("detect", "eval", str(ds[0]), "-d", str(det[0]), "--split", "holdout"),
    ]
    for args in cases:
        assert _cli(*args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and len(err.splitlines()) == 1 and "Traceback" not in err, (args, err)
    assert not (tmp_path / "r").exists() and not (tmp_path / "z").exists()
    from swap.lock import folder_lock
    busy = tmp_path / "busy"                # a dataset or detector folder another process is writing
    with folder_lock(busy, "veriswap detect dataset"):
        for args in (("detect", "dataset", "--real", str(world["real"]["grace"]), "-o", str(busy)),
                     ("detect", "train", str(ds[0]), "-o", str(busy))):
            assert _cli(*args) == 2, args
            assert "is in use by veriswap detect dataset" in capsys.readouterr().err
    with pytest.raises(InputError, match="unknown timm architecture"):
        from detect.model import create_model

        create_model("no_such_net_b9")
    # and as a real process: a one-line error, exit 2, no traceback
    r = subprocess.run([VERISWAP, "detect", "score", str(junk), "-d", str(det[0])], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_errors_with_the_progress_bar_on_are_exactly_one_line(tmp_path):
    # no --no-progress: stderr is a pipe, and must hold the error line and nothing else (no blank line)
    from swap.samples import save_photo

    photo = save_photo("astronaut", tmp_path / "astronaut.png")
    for args, msg in ((["dataset", "--real", str(photo), "-o", str(tmp_path / "ds")], "takes videos"),
                      (["train", str(tmp_path), "-o", str(tmp_path / "det")], "no dataset.json")):
        r = subprocess.run([VERISWAP, "detect", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("error:") and msg in r.stderr and r.stderr.count("\n") == 1, (args, repr(r.stderr))



def test_heatmaps_point_at_the_manipulated_region():
    # a detector trained to spot a localized edit (the mouth re-coloured, on real faces shifted and
    # re-lit at random) must show that region in its Grad-CAM, and not another of the same size
    import types

    import torch

    from detect.explain import gradcam, overlay
    from detect.model import create_model, preprocess
    from swap.faces import FaceAnalyzer
    from swap.samples import load_photo

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    size, mean, std = 96, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    fa = FaceAnalyzer()
    faces = [(f.crop, f.landmarks_crop) for name in ("astronaut", "grace_hopper")
             for im in (load_photo(name), load_photo(name)[:, ::-1].copy()) for f in fa.analyze(im, size=size)[:1]]

    def box(pts, pad=3):
        (x0, y0), (x1, y1) = pts.min(0).astype(int) - pad, pts.max(0).astype(int) + pad
        return max(x0, 0), max(y0, 0), x1, y1

    def sample(fake):
        crop, lm = faces[rng.integers(len(faces))]
        img = crop.copy()
        if fake:
            x0, y0, x1, y1 = box(lm[48:68])
            img[y0:y1, x0:x1] = np.clip(img[y0:y1, x0:x1] * np.float32([1.25, 0.85, 0.85]), 0, 255)
        shift = rng.integers(-6, 7, 2)
        img = cv2.warpAffine(img, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (size, size),
                             borderMode=cv2.BORDER_REPLICATE)
        return np.clip(img * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8), lm + shift

    model = create_model("resnet10t")
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(70):
        ys = rng.integers(0, 2, 32)
        x = preprocess([sample(bool(y))[0] for y in ys], size, mean, std)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).view(-1), torch.tensor(ys).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    det = types.SimpleNamespace(model=model, device=torch.device("cpu"),
                                config=types.SimpleNamespace(input_size=size, mean=mean, std=std, arch="resnet10t"))
    fakes = [sample(True) for _ in range(16)]
    cams = gradcam(det, [f[0] for f in fakes])
    assert cams.shape == (16, size, size) and cams.min() >= 0 and np.allclose(cams.max((1, 2)), 1)
    mouth, brow = [], []
    for (img, lm), cam in zip(fakes, cams):
        for pts, out in ((lm[48:68], mouth), (lm[17:27], brow)):     # the edit vs a region it never touches
            x0, y0, x1, y1 = box(pts)
            out.append(cam[y0:y1, x0:x1].sum() / cam.sum() / ((y1 - y0) * (x1 - x0) / size ** 2))
    assert np.mean(mouth) > 1.8, mouth           # measured 3.0x its area share
    assert np.mean(mouth) > 2 * np.mean(brow), (mouth, brow)
    pic = overlay(fakes[0][0], cams[0])
    assert pic.shape == (size, 2 * size, 3) and np.array_equal(pic[:, :size], fakes[0][0])
    # a ViT has no spatial feature map: a clear error (score then keeps its verdict and warns)
    vit = types.SimpleNamespace(model=create_model("vit_tiny_patch16_224").eval(), device=torch.device("cpu"),
                                config=types.SimpleNamespace(input_size=224, mean=mean, std=std, arch="vit_tiny"))
    with pytest.raises(InputError, match="convolutional"):
        gradcam(vit, [fakes[0][0]])


def test_train_pretrained_by_default_and_the_ways_out(ds, tmp_path, monkeypatch, capsys):
    """`detect train` starts from timm's pretrained weights; with no hub and no cache: one line naming
    --weights FILE and connecting once, exit 2. --weights goes through timm's overlay; the card says which."""
    import timm
    from huggingface_hub import constants
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    args = ["detect", "train", str(ds[0]), "--arch", "resnet10t", "--input-size", "64", "--epochs", "1",
            "--batch-size", "8", "--device", "cpu", "--no-progress"]
    assert _cli(*args, "-o", str(tmp_path / "a")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--weights FILE" in err and "timm/resnet10t" in err
    w = tmp_path / "r10t.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model("resnet10t").state_dict().items()}, str(w))
    assert _cli(*args, "-o", str(tmp_path / "b"), "--weights", str(w)) == 0
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["extra"]["backbone"]["kind"] == "file" and cfg["extra"]["backbone"]["sha256"]
    assert _cli(*args, "-o", str(tmp_path / "c"), "--no-pretrained", "--leave-out-method", "autoencoder",
                "--sbi") == 0
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    assert cfg["extra"]["backbone"]["kind"] == "none" and cfg["extra"]["left_out_methods"] == ["autoencoder"]
    assert "from scratch" in capsys.readouterr().err

"""The train stage on real aligned faces: astronaut (A) vs Grace Hopper (B), single photos + augmentation."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import make_faces_dir  # noqa: E402

from swap.errors import InputError  # noqa: E402
from swap.models import create_model, load_model, swap_crop  # noqa: E402
from swap.models import checkpoint as mio  # noqa: E402
from swap.train import AugmentConfig, TrainConfig, Trainer, train  # noqa: E402
from swap.train.augment import augment_batch, center_batch, lab_to_rgb, rgb_to_lab  # noqa: E402

torch.set_num_threads(2)
TINY = {"resolution": 64, "e_dims": 16, "ae_dims": 64, "d_dims": 16, "mask_dims": 8}
ROOT = Path(__file__).resolve().parents[1]
VERISWAP = str(Path(sys.executable).with_name("veriswap"))   # console script (the installed entry point)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    return make_faces_dir(d / "astronaut", "astronaut"), make_faces_dir(d / "grace_hopper", "grace_hopper")


def tiny_cfg(faces, model_dir, **kw):
    base = dict(faces_a=str(faces[0]), faces_b=str(faces[1]), model_dir=str(model_dir), model="hq",
                model_options=dict(TINY), batch_size=4, lr=3e-4, save_every=0, preview_every=0,
                progress=False, identity_check=False)
    base.update(kw)
    return TrainConfig(**base)


def read_loss(model_dir):
    with open(Path(model_dir) / "loss.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_loss_terms_weigh_the_error_inside_the_face():
    from swap.train.loss import LossConfig, reconstruction_loss
    target = torch.full((2, 3, 32, 32), 0.5)
    masks = torch.zeros(2, 3, 32, 32)
    masks[:, 0, 8:24, 8:24] = 1                       # face square, no eyes/mouth
    pred = target.clone()
    pred[:, :, 8:24, 8:24] += 0.1                     # error inside the face only
    face = lambda **w: float(reconstruction_loss(pred, target, masks, LossConfig(**w))["face"])  # noqa: E731
    inside = 16 * 16 / (16 * 16 + 0.05 * (32 * 32 - 16 * 16))   # background weight 0.05
    assert face(ssim=0, l1=1, mse=0) == pytest.approx(0.1 * inside, rel=1e-4)
    assert face(ssim=0, l1=0, mse=1) == pytest.approx(0.01 * inside, rel=1e-4)
    assert face(ssim=0, l1=1, mse=1) == pytest.approx(0.11 * inside, rel=1e-4)
    assert float(reconstruction_loss(target, target, masks, LossConfig(mse=1))["face"]) == pytest.approx(0, abs=1e-6)
    outside = target.clone()
    outside[:, :, :4, :4] += 0.1                      # the same error on the background costs 20x less
    assert float(reconstruction_loss(outside, target, masks, LossConfig(ssim=0, l1=1))["face"]) < face(ssim=0, l1=1) / 10


def test_augmentation_is_identity_without_randomness(faces):
    from swap.train.data import load_faces
    fs = load_faces(faces[0], 64)
    g = torch.Generator().manual_seed(0)
    cfg = AugmentConfig(rotate=0, zoom=0, shift=0, flip=0, warp_sigma=0, lightness=0, ab=0)
    warped, target, masks = augment_batch(fs.images[[0, 0]], fs.masks[[0, 0]], 64, cfg, g)
    ref = center_batch(fs.images[[0, 0]], 64, 1.0)
    assert torch.allclose(target, ref, atol=1e-5) and torch.allclose(warped, ref, atol=1e-5)
    assert masks.shape == (2, 3, 64, 64) and 0.2 < masks[0, 0].mean() < 0.95   # face hull covers the face
    assert masks[0, 1].sum() > 0 and masks[0, 2].sum() > 0                      # eyes and mouth regions
    # the full recipe changes pixels, keeps range, and is reproducible from the generator
    out1 = augment_batch(fs.images[[0, 0]], fs.masks[[0, 0]], 64, AugmentConfig(), torch.Generator().manual_seed(1))
    out2 = augment_batch(fs.images[[0, 0]], fs.masks[[0, 0]], 64, AugmentConfig(), torch.Generator().manual_seed(1))
    assert torch.equal(out1[0], out2[0]) and (out1[0] - ref).abs().mean() > 0.01
    assert not torch.equal(out1[0][0], out1[0][1])  # per-sample randomness
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=2e-3)


def test_augmentation_options_no_warp_no_flip_no_colour(faces):
    from swap.train.data import load_faces
    fs = load_faces(faces[0], 64)
    imgs, msks = fs.images[[0] * 8], fs.masks[[0] * 8]
    ref = center_batch(imgs, 64, 1.0)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    warped, target, _ = augment_batch(imgs, msks, 64, AugmentConfig(warp=False), g())
    assert torch.equal(warped, target)                          # --no-warp: the input is the target
    _, target, _ = augment_batch(imgs, msks, 64, AugmentConfig(rotate=0, zoom=0, shift=0, lightness=0, ab=0), g())
    mirrored = [bool((t - ref[0].flip(-1)).abs().mean() < 1e-4) for t in target]
    assert 2 <= sum(mirrored) <= 6 and all(m or (t - ref[0]).abs().mean() < 1e-4 for m, t in zip(mirrored, target))
    _, target, _ = augment_batch(imgs, msks, 64, AugmentConfig(rotate=0, zoom=0, shift=0, flip=0), g())
    assert (target - ref).abs().amax() > 0.05                   # colour jitter on ...
    _, target, _ = augment_batch(imgs, msks, 64, AugmentConfig(rotate=0, zoom=0, shift=0, flip=0, lightness=0, ab=0), g())
    assert torch.allclose(target, ref, atol=1e-5)               # ... and off (--no-flip --no-color-aug)


def test_warp_to_landmarks_gives_the_input_the_other_faces_shape(faces):
    """dlib's landmarks on the warped astronaut sit where Grace Hopper's are; the target keeps her own."""
    from swap import faces as F
    from swap.train.data import load_faces
    a, b = load_faces(faces[0], 128), load_faces(faces[1], 128)
    cfg = AugmentConfig(rotate=0, zoom=0, shift=0, flip=0, lightness=0, ab=0, warp_to_landmarks=True)
    warped, target, _ = augment_batch(a.images[:1], a.masks[:1], 128, cfg, torch.Generator().manual_seed(0),
                                      (a.landmarks[:1], b.landmarks[:1]))
    to_px = lambda t: (t.numpy() + 1) / 2 * 128 - 0.5  # noqa: E731
    la, lb = to_px(a.landmarks[0]), to_px(b.landmarks[0])
    u8 = lambda t: np.ascontiguousarray((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))  # noqa: E731
    box = (8, 8, 120, 120)                                      # the face fills an aligned crop
    dist = lambda p, q: float(np.linalg.norm(p - q, axis=1).mean())  # noqa: E731
    on_warped, on_target = F.landmarks(u8(warped[0]), box), F.landmarks(u8(target[0]), box)
    assert dist(on_warped, lb) < 0.5 * dist(la, lb), (dist(on_warped, lb), dist(la, lb))
    assert dist(on_target, la) < 0.5 * dist(la, lb)
    with pytest.raises(ValueError):                             # the loop always passes the landmarks
        augment_batch(a.images[:1], a.masks[:1], 128, cfg, torch.Generator())


def test_cli_augmentation_flags_train_and_are_recorded(faces, tmp_path):
    from veriswap.cli import main
    md = tmp_path / "m"
    with pytest.raises(SystemExit) as e:
        main(["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(md), "--model", "hq",
              "--resolution", "64", "--e-dims", "16", "--ae-dims", "64", "--d-dims", "16", "-b", "2", "-n", "2",
              "--warp-to-landmarks", "--no-flip", "--no-color-aug", "--uniform-yaw", "--no-identity-check",
              "--no-progress"])
    assert e.value.code == 0
    training = json.loads((md / "config.json").read_text())["training"]
    aug = training["augment"]
    assert training["uniform_yaw"] is True
    assert aug["warp_to_landmarks"] is True and aug["flip"] == 0 and aug["lightness"] == 0 and aug["ab"] == 0
    assert len(read_loss(md)) == 2


def test_uniform_yaw_draws_each_head_pose_bin_equally(faces, tmp_path):
    """9 copies of the astronaut looking one way and her mirror image looking the other: plain draws take
    the mirror 10% of the time, --uniform-yaw 50% (DeepFaceLab's uniform_yaw)."""
    import shutil

    import cv2
    from swap.faces import FaceAnalyzer
    from swap.samples import load_photo
    from swap.train.data import uniform_yaw_weights
    w = uniform_yaw_weights(np.array([0.0] * 90 + [25.0] * 9 + [-31.0, np.nan]))
    assert w.sum() == pytest.approx(1) and w[:90].sum() == pytest.approx(0.25) and w[99] == pytest.approx(0.25)
    folder = tmp_path / "skewed"
    shutil.copytree(faces[0], folder)
    doc = json.loads((folder / "faces.json").read_text())
    (name, entry), = doc["faces"].items()
    for i in range(1, 9):
        shutil.copy(folder / name, folder / f"copy{i}.png")
        doc["faces"][f"copy{i}.png"] = entry
    mirror = FaceAnalyzer().analyze(np.ascontiguousarray(load_photo("astronaut")[:, ::-1]), size=128)[0]
    cv2.imwrite(str(folder / "zmirror.png"), cv2.cvtColor(mirror.crop, cv2.COLOR_RGB2BGR))
    doc["faces"]["zmirror.png"] = {**entry, "landmarks": mirror.landmarks_crop.round(2).tolist()}
    (folder / "faces.json").write_text(json.dumps(doc))
    share = {}
    for uniform in (False, True):
        tr = Trainer(tiny_cfg((folder, faces[1]), tmp_path / f"m{uniform}", uniform_yaw=uniform, batch_size=4000))
        share[uniform] = float((tr._draw(tr.a, "a") == tr.a.files.index("zmirror.png")).float().mean())
    assert 0.05 < share[False] < 0.17 and 0.42 < share[True] < 0.58, share


def test_short_run_loss_falls_and_writes_outputs(faces, tmp_path):
    md = tmp_path / "m"
    s = train(tiny_cfg(faces, md, iterations=60, preview_every=30, save_every=30, identity_check=True))
    assert s["iteration"] == 60 and s["stopped_by"] == "iterations"
    rows = read_loss(md)
    assert [int(r["iteration"]) for r in rows] == list(range(1, 61))
    first = np.mean([float(r["loss_a"]) + float(r["loss_b"]) for r in rows[:10]])
    last = np.mean([float(r["loss_a"]) + float(r["loss_b"]) for r in rows[-10:]])
    assert last < 0.85 * first, (first, last)
    assert float(rows[-1]["mask_a"]) < float(rows[0]["mask_a"])
    for f in ("preview.png", "loss.png", "model.safetensors", "optimizer.safetensors", "state.json",
              "config.json", "model.safetensors.bak"):
        assert (md / f).stat().st_size > 0, f
    import cv2
    prev = cv2.imread(str(md / "preview.png"))
    assert prev.shape[0] == 8 * 64  # A, A->A, A->B, mask, B, B->B, B->A, mask
    cfg = json.loads((md / "config.json").read_text())
    assert cfg["architecture"] == "hq" and cfg["resolution"] == 64
    assert cfg["identities"]["a"]["name"] == "astronaut" and cfg["identities"]["b"]["name"] == "grace_hopper"
    assert len(cfg["identities"]["a"]["embedding_centroid"]) == 128
    assert cfg["weights"]["sha256"] == mio.sha256_file(md / "model.safetensors")
    st = json.loads((md / "state.json").read_text())
    assert st["identity_checks"] and st["identity_checks"][-1]["faces"] > 0
    # swap quality (swap.quality): 60 iterations of a tiny model give blurs, which must score as failures
    ic = st["identity_checks"][-1]
    for key in ("a2b", "b2a"):
        assert ic[key]["n"] > 0 and ic[key]["passed"] == 0, ic[key]
    from swap.quality import identity_check_line
    assert "0/" in identity_check_line(ic) and "pass" in identity_check_line(ic)
    # convert's entry point
    model, mcfg = load_model(md, "cpu")
    crop = np.ascontiguousarray(np.asarray(__import__("cv2").imread(str(next(faces[0].glob("*.png")))))[..., ::-1])
    out, mask = swap_crop(model, mcfg, crop, "a2b")
    assert out.shape == crop.shape and out.dtype == np.uint8 and mask.shape == crop.shape[:2]
    assert 0 <= mask.min() and mask.max() <= 1 and not np.array_equal(out, crop)


def test_original_architecture_trains_saves_and_loads(faces, tmp_path):
    m = create_model("original")
    n_params = sum(p.numel() for p in m.parameters())
    assert 80e6 < n_params < 85e6   # 4 conv blocks 128..1024, dense 1024, 4x4x1024, two 3-upscale decoders
    md = tmp_path / "orig"
    s = train(tiny_cfg(faces, md, model="original", model_options={}, batch_size=2, iterations=2))
    assert s["iteration"] == 2 and s["resolution"] == 64
    model, cfg = load_model(md)
    face, mask = model(torch.rand(1, 3, 64, 64), decoder="b")
    assert face.shape == (1, 3, 64, 64) and mask is None and cfg["has_mask"] is False


@pytest.mark.parametrize("precision,options", [
    ("fp32", {}), ("bf16", {}),          # auto picks either, by CPU: both must resume exactly
    ("fp32", {"augment": AugmentConfig(warp_to_landmarks=True), "uniform_yaw": True}),   # the other draws too
])
def test_resume_continues_with_same_next_loss(faces, tmp_path, precision, options):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(tiny_cfg(faces, straight, iterations=7, precision=precision, **options))
    train(tiny_cfg(faces, resumed, iterations=6, precision=precision, **options))
    s = train(tiny_cfg(faces, resumed, iterations=7, precision=precision, **options))
    assert s["resumed_from"] == 6 and s["iteration"] == 7
    a, b = read_loss(straight), read_loss(resumed)
    assert [int(r["iteration"]) for r in b] == list(range(1, 8))
    for k in ("loss_a", "loss_b", "mask_a"):
        assert float(b[-1][k]) == pytest.approx(float(a[-1][k]), rel=1e-4), k
    st = json.loads((resumed / "state.json").read_text())
    assert st["iteration"] == 7


def test_snapshots_are_model_folders_and_timelapse_keeps_each_preview(faces, tmp_path):
    import cv2
    md = tmp_path / "m"
    train(tiny_cfg(faces, md, iterations=6, snapshot_every=2, preview_every=3, timelapse=True))
    snaps = sorted(p.name for p in (md / "snapshots").iterdir())
    assert snaps == ["00000002", "00000004", "00000006"]
    for name in snaps:   # later saves must not have touched them (hard links are only ever replaced)
        ck = mio.find_checkpoint(md / "snapshots" / name)
        assert not ck["backup"] and ck["state"]["iteration"] == int(name)
        _, cfg = load_model(md / "snapshots" / name)
        assert cfg["iteration"] == int(name)
    assert mio.sha256_file(md / "snapshots/00000002" / mio.WEIGHTS) != mio.sha256_file(md / mio.WEIGHTS)
    # training goes on from a snapshot as from any model folder
    shutil.copytree(md / "snapshots/00000004", tmp_path / "from4")
    assert train(tiny_cfg(faces, tmp_path / "from4", iterations=5))["resumed_from"] == 4
    frames = sorted((md / "timelapse").glob("*.png"))
    assert [f.name for f in frames] == ["00000003.png", "00000006.png"]
    preview = cv2.imread(str(md / "preview.png"))
    assert all(cv2.imread(str(f)).shape == preview.shape for f in frames)
    assert (cv2.imread(str(frames[-1])) == preview).all()


def test_keep_best_keeps_the_save_with_the_lowest_interval_loss(faces, tmp_path):
    md = tmp_path / "m"
    train(tiny_cfg(faces, md, iterations=6, save_every=2, keep_best=True))
    train(tiny_cfg(faces, md, iterations=8, save_every=2, keep_best=True))      # resumed: the record carries on
    train(tiny_cfg(faces, md, iterations=10, save_every=2, keep_best=True, lr=0.05))   # a rate that spoils it
    rows = read_loss(md)
    means = {end: np.mean([float(r["loss_a"]) + float(r["loss_b"]) for r in rows[end - 2:end]])
             for end in (2, 4, 6, 8, 10)}
    want = min(means, key=means.get)
    assert want != 10, means                                                   # the last save is not the best
    best = json.loads((md / "state.json").read_text())["best"]
    assert best["iteration"] == want and best["loss"] == pytest.approx(means[want], rel=1e-4)
    assert json.loads((md / "best" / "state.json").read_text())["iteration"] == want
    assert load_model(md / "best")[1]["architecture"] == "hq"                  # best/ is a model folder
    from swap.models.inspect import inspect_model
    assert inspect_model(md).best == best                                      # `veriswap model` shows it


@pytest.mark.parametrize("save_every,caught", [(1, "the weights hold NaN/inf at iteration 3"),   # at the save
                                               (0, "the loss became nan at iteration 4")])          # at the read
def test_divergence_stops_without_saving_over_the_last_good_checkpoint(faces, tmp_path, save_every, caught):
    md = tmp_path / "m"
    train(tiny_cfg(faces, md, iterations=2, save_every=1))
    good = mio.sha256_file(md / mio.WEIGHTS)
    # an infinite learning rate (given on resume, so it overrides the saved one) blows the weights up at step 3
    with pytest.raises(InputError, match=rf"training diverged: {caught}; .*keeps iteration 2: lower --lr"):
        train(tiny_cfg(faces, md, iterations=6, save_every=save_every, lr=float("inf")))
    ck = mio.find_checkpoint(md)
    assert ck["state"]["iteration"] == 2 and not ck["backup"] and mio.sha256_file(md / mio.WEIGHTS) == good
    model, _ = load_model(md)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(np.isfinite(float(r["loss_a"])) for r in read_loss(md))   # no NaN row logged


def test_lr_given_on_resume_replaces_the_saved_one(faces, tmp_path):
    md = tmp_path / "m"
    train(tiny_cfg(faces, md, iterations=1, lr=3e-4))
    t = Trainer(tiny_cfg(faces, md, iterations=2, lr=None))       # not given: the saved rate
    assert t.lr == pytest.approx(3e-4)
    t = Trainer(tiny_cfg(faces, md, iterations=2, lr=1e-5))       # given: it wins
    assert t.lr == pytest.approx(1e-5) and t.config_dict()["training"]["lr"] == pytest.approx(1e-5)
    assert Trainer(tiny_cfg(faces, tmp_path / "new", iterations=1, lr=None)).lr == pytest.approx(5e-5)


def test_out_of_memory_is_one_clear_error_and_keeps_the_checkpoint(faces, tmp_path):
    md = tmp_path / "m"
    t = Trainer(tiny_cfg(faces, md, iterations=5, save_every=2))
    real, calls = t.train_step_async, []

    def step():
        calls.append(1)
        if len(calls) == 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real()
    t.train_step_async = step
    with pytest.raises(InputError, match=r"out of CPU memory at --batch-size 4: lower it .*keeps iteration 2"):
        t.run()
    assert mio.find_checkpoint(md)["state"]["iteration"] == 2
    t.train_step_async = lambda: (_ for _ in ()).throw(RuntimeError("some other failure"))
    with pytest.raises(RuntimeError, match="some other failure"):   # not every RuntimeError is memory
        t.run()


def test_resume_rejects_other_architecture(faces, tmp_path):
    md = tmp_path / "m"
    train(tiny_cfg(faces, md, iterations=1))
    with pytest.raises(InputError, match="holds a 'hq' model"):
        Trainer(tiny_cfg(faces, md, model="original", model_options={}, iterations=2))


KILL_CHILD = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_train import tiny_cfg
    from swap.models import checkpoint as mio
    from swap.train import Trainer
    t = Trainer(tiny_cfg(({a!r}, {b!r}), {md!r}, iterations=10))
    t.train_step(); t.train_step(); t.save()
    calls = [0]
    real = mio._replace
    def paused(src, dst):
        calls[0] += 1
        if calls[0] == {at}:
            open({marker!r}, "w").write(str(dst))
            time.sleep(120)
        real(src, dst)
    mio._replace = paused
    t.train_step(); t.save()
""")


@pytest.mark.parametrize("at", [2, 4, 6])
def test_kill_9_during_save_leaves_loadable_checkpoint(faces, tmp_path, at):
    # replace calls in the 2nd save: 1-3 back up weights/optimizer/state, 4-5 new payload, 6 state, 7 config
    md, marker = tmp_path / "m", tmp_path / "marker"
    code = KILL_CHILD.format(tests=str(Path(__file__).parent), a=str(faces[0]), b=str(faces[1]), md=str(md),
                             at=at, marker=str(marker))
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    t0 = time.time()
    while not marker.exists():
        assert p.poll() is None, "child exited before reaching the save"
        assert time.time() - t0 < 90
        time.sleep(0.05)
    p.kill()
    p.wait()
    ck = mio.find_checkpoint(md)
    assert ck is not None and ck["state"]["iteration"] == 2
    model, cfg = load_model(md)
    assert cfg["iteration"] == 2 and cfg["weights"]["sha256"] == mio.sha256_file(ck["weights"])
    s = train(tiny_cfg(faces, md, iterations=3))
    assert s["resumed_from"] == 2 and s["iteration"] == 3


def test_corrupt_and_foreign_checkpoints_give_clear_errors(faces, tmp_path):
    md = tmp_path / "m"
    train(tiny_cfg(faces, md, iterations=1, save_every=1))
    train(tiny_cfg(faces, md, iterations=2))
    # corrupt current weights: falls back to the backup (iteration 1)
    (md / "model.safetensors").write_bytes(b"\x00" * 100)
    model, cfg = load_model(md)
    assert cfg["iteration"] == 1
    # corrupt backup too: clear error, no traceback material
    (md / "model.safetensors.bak").write_bytes(b"garbage")
    with pytest.raises(InputError, match="no usable checkpoint"):
        load_model(md)
    # a pickle posing as weights is never unpickled
    import pickle
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "model.safetensors").write_bytes(pickle.dumps({"x": 1}))
    (foreign / "config.json").write_text(json.dumps({"architecture": "hq"}))
    with pytest.raises(InputError, match="not a veriswap model"):
        load_model(foreign)
    # weights of another architecture under a valid-looking state
    other = tmp_path / "other"
    train(tiny_cfg(faces, other, iterations=1))
    cfg = json.loads((other / "config.json").read_text())
    cfg["model_args"]["ae_dims"] = 32
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="does not fit architecture"):
        load_model(other)
    # through the CLI: one line, exit code 2
    from veriswap.cli import main
    with pytest.raises(SystemExit) as e:
        main(["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(md), "-n", "3",
              "--no-progress"])
    assert e.value.code == 2


def test_a_box_without_pyav_cryptography_c2pa_or_dlib_still_trains(faces, tmp_path):
    # a lent GPU box has torch but none of these: `veriswap train` must work there, the rest say what is missing
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        MISSING = {"av", "c2pa", "cryptography", "dlib", "face_recognition_models"}
        class Missing:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in MISSING:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])
        sys.meta_path.insert(0, Missing())
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(block), str(ROOT)]))
    md = tmp_path / "m"
    r = subprocess.run([VERISWAP, "train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(md),
                        "--model", "hq", "--resolution", "64", "--e-dims", "16", "--d-dims", "16", "--ae-dims", "64",
                        "-b", "2", "-n", "2", "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((md / "state.json").read_text())["iteration"] == 2 and (md / "preview.png").exists()
    assert "identity_checks" in json.loads((md / "state.json").read_text())   # dlib missing: the check is skipped
    r = subprocess.run([VERISWAP, "provenance", "keygen", "-o", str(tmp_path / "k")], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: veriswap provenance needs the Python package 'cryptography', which is not installed here"]
    assert not (tmp_path / "k").exists()


def test_cli_sigusr1_saves_and_goes_on_sigterm_saves_and_exits(faces, tmp_path):
    md = tmp_path / "m"
    p = subprocess.Popen([VERISWAP, "train", "--faces-a", str(faces[0]), "--faces-b",
                          str(faces[1]), "-m", str(md), "--model", "hq", "--resolution", "64", "--e-dims", "16",
                          "--d-dims", "16", "--ae-dims", "64", "-b", "2", "-n", "100000", "--save-every", "0",
                          "--preview-every", "2", "--no-identity-check", "--threads", "1", "--no-progress"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    def wait_for(path):
        t0 = time.time()
        while not path.exists():
            assert p.poll() is None, p.stdout.read()
            assert time.time() - t0 < 90
            time.sleep(0.1)
    wait_for(md / "preview.png")
    p.send_signal(signal.SIGUSR1)            # save now and go on (--save-every 0: no other save)
    wait_for(md / "state.json")
    st = json.loads((md / "state.json").read_text())
    assert st["reason"] == "requested" and st["iteration"] >= 2 and p.poll() is None
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0, out
    last = json.loads((md / "state.json").read_text())
    assert last["reason"] == "SIGTERM" and last["iteration"] >= st["iteration"]
    assert "SIGTERM" in out and "examples/s" in out and f"saved iteration {st['iteration']}" in out


def test_a_second_writer_of_a_model_folder_is_refused_and_a_killed_one_holds_nothing(faces, tmp_path):
    md = tmp_path / "m"
    code = ("import sys, time\nfrom swap.lock import folder_lock\n"
            "with folder_lock(sys.argv[1], 'veriswap train'):\n    print('held', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(md)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"in use by veriswap train \(pid {holder.pid}\)"):
            train(tiny_cfg(faces, md, iterations=1))
        assert not (md / "state.json").exists()
    finally:
        holder.kill()                           # kill -9: the kernel drops its lock, nothing stale is left
        holder.wait()
    assert train(tiny_cfg(faces, md, iterations=1))["iteration"] == 1


def test_a_new_model_starts_from_another_models_encoder_and_can_freeze_it(faces, tmp_path):
    src = tmp_path / "src"
    train(tiny_cfg(faces, src, iterations=3))
    trained = load_model(src)[0].state_dict()
    enc = lambda sd: {k: v for k, v in sd.items() if k.startswith("encoder.")}  # noqa: E731

    def same(a, b):
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    tr = Trainer(tiny_cfg(faces, tmp_path / "new", load_weights=str(src), freeze_encoder=True))
    start = {k: v.clone() for k, v in tr.model.state_dict().items()}
    assert same(enc(start), enc(trained)) and not same(start, trained)      # the encoder only, by default
    assert tr.init_from["parts"] == "encoder" and tr.init_from["iteration"] == 3
    for _ in range(2):
        tr.train_step()
    now = tr.model.state_dict()
    assert same(enc(now), enc(start))                                       # frozen: unchanged by training
    assert not torch.equal(now["decoders.a.face_out.weight"], start["decoders.a.face_out.weight"])
    assert same(Trainer(tiny_cfg(faces, tmp_path / "x", load_weights=str(src), load_parts="all")).model.state_dict(),
                trained)                                                    # --load-all: the decoders too
    s = train(tiny_cfg(faces, tmp_path / "all", load_weights=str(src), load_parts="all", iterations=1))
    assert s["initialised_from"]["parts"] == "all"
    train(tiny_cfg(faces, tmp_path / "all", iterations=2))                 # resumed: the origin stays on record
    cfg = json.loads((tmp_path / "all" / "config.json").read_text())
    assert cfg["initialised_from"]["sha256"] == mio.sha256_file(src / "model.safetensors")
    with pytest.raises(InputError, match="already holds one"):           # only a new folder starts from another
        train(tiny_cfg(faces, tmp_path / "all", load_weights=str(src), iterations=2))
    with pytest.raises(InputError, match="holds a 'hq' model, not 'original'"):
        Trainer(tiny_cfg(faces, tmp_path / "o", model="original", model_options={}, load_weights=str(src)))
    with pytest.raises(InputError, match="do not fit this model"):
        Trainer(tiny_cfg(faces, tmp_path / "w", model_options={**TINY, "e_dims": 32}, load_weights=str(src)))
    with pytest.raises(InputError, match="not a veriswap model folder"):
        Trainer(tiny_cfg(faces, tmp_path / "n", load_weights=str(faces[0])))


def test_model_command_reports_the_folder_and_catches_damaged_or_nan_checkpoints(faces, tmp_path, capsys):
    from safetensors.torch import load_file
    from veriswap.cli import main

    def model_cli(*args):
        with pytest.raises(SystemExit) as e:
            main(["model", *map(str, args)])
        return e.value.code, capsys.readouterr()
    md = tmp_path / "m"
    train(tiny_cfg(faces, md, iterations=3, save_every=2))    # saves at 2 and at the end (3)
    code, out = model_cli(md, "--json")
    info = json.loads(out.out)
    assert code == 0 and info["ok"] and info["used"] == "current"
    assert [(c["which"], c["iteration"], c["ok"]) for c in info["checkpoints"]] == [("current", 3, True), ("backup", 2, True)]
    assert info["parameters"] == sum(p.numel() for p in load_model(md)[0].parameters())
    assert info["identities"]["a"] == {"name": "astronaut", "faces": 1} and info["architecture"] == "hq"
    weights = load_file(str(md / "model.safetensors"))
    weights["decoders.b.face_out.bias"][0] = float("nan")    # a NaN saved with valid hashes (what a bad run leaves)
    mio.save_checkpoint(md, weights, None, json.loads((md / "state.json").read_text()),
                        json.loads((md / "config.json").read_text()))
    code, out = model_cli(md)
    assert code == 1 and "current    iteration 3" in out.out and "NaN/inf in 1 weights (e.g. decoders.b.face_out.bias)" in out.out
    (md / "model.safetensors").write_bytes(b"garbage")      # damaged current: train/convert fall back to the backup
    code, out = model_cli(md)
    assert code == 0 and "current    damaged: model.safetensors does not match state.json" in out.out
    assert "backup     iteration 3" in out.out and "<- loaded by train/convert" in out.out
    code, out = model_cli(faces[0])
    assert code == 2 and out.err.startswith("error:") and "not a veriswap model folder" in out.err


def test_ddp_two_cpu_processes_write_one_checkpoint(faces, tmp_path):
    md = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "--no-python", VERISWAP, "train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]),
                        "-m", str(md), "--model", "hq", "--resolution", "64", "--e-dims", "16", "--d-dims", "16",
                        "--ae-dims", "64", "-b", "2", "-n", "4", "--save-every", "2", "--preview-every", "4",
                        "--device", "cpu", "--threads", "1", "--no-identity-check", "--no-progress"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    st = json.loads((md / "state.json").read_text())
    assert st["world_size"] == 2 and st["iteration"] == 4 and len(st["rng"]["generators"]) == 2
    assert [int(x["iteration"]) for x in read_loss(md)] == [1, 2, 3, 4]   # rank 0 alone logs
    assert not list(md.glob("*.tmp")) and (md / "preview.png").exists()
    assert r.stdout.count("veriswap train") == 1                           # one summary
    load_model(md)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("compile_mode", [None, "default", "reduce-overhead"])
def test_cuda_mixed_precision_channels_last(faces, tmp_path, compile_mode):
    md = tmp_path / "cuda"
    s = train(tiny_cfg(faces, md, iterations=20, device="cuda", compile_mode=compile_mode))
    assert s["device"].startswith("cuda") and s["precision"] in ("bfloat16", "float16")
    rows = read_loss(md)
    assert float(rows[-1]["loss_a"]) < float(rows[0]["loss_a"])
    model, cfg = load_model(md, "cuda")
    assert next(model.parameters()).is_cuda
    if compile_mode is None:   # resume on CUDA: fused Adam's state goes back to the device
        s = train(tiny_cfg(faces, md, iterations=22, device="cuda"))
        assert s["resumed_from"] == 20 and s["iteration"] == 22
        assert np.isfinite(float(read_loss(md)[-1]["loss_a"]))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("options", [{}, {"augment": AugmentConfig(warp_to_landmarks=True), "uniform_yaw": True}])
def test_cuda_step_is_queued_without_waiting_for_the_gpu(faces, tmp_path, options):
    # any host read (.item(), a blocking copy) would make Python wait for every step: the GPU idles between them
    tr = Trainer(tiny_cfg(faces, tmp_path / "m", device="cuda", iterations=10, **options))
    for _ in range(2):          # lazy CUDA/cuDNN initialisation may synchronise
        tr.train_step()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [tr.train_step_async() for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.stack(losses).isfinite().all()


def test_batched_loss_reads_log_every_step_as_per_step_reads_do(faces, tmp_path):
    # on CUDA the loop reads losses back in batches; the log must be the same as reading after every step
    logs = []
    for name, each in (("each", True), ("batched", False)):
        tr = Trainer(tiny_cfg(faces, tmp_path / name, iterations=7, save_every=3))
        tr.read_each_step = each
        with mock.patch("swap.train.loop.READ_EVERY_S", 1e9):
            s = tr.run()
        rows = read_loss(tmp_path / name)
        assert [int(r["iteration"]) for r in rows] == list(range(1, 8))
        assert s["first_loss"]["iteration"] == 1 and s["last_loss"]["iteration"] == 7
        logs.append([[float(r[k]) for k in ("loss_a", "loss_b", "mask_a", "mask_b")] for r in rows])
        assert mio.find_checkpoint(tmp_path / name)["state"]["last_loss"]["iteration"] == 7
    np.testing.assert_allclose(logs[0], logs[1], rtol=1e-5)   # same seed, same steps


def test_cpu_precision_choice_and_bf16_training(faces, tmp_path):
    from swap.device import cpu_fast_bf16
    from swap.train.loop import resolve_precision
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if cpu_fast_bf16() else None)
    assert resolve_precision("fp32", cpu) is None and resolve_precision("bf16", cpu) == torch.bfloat16
    for bad in ("fp16", "half"):
        with pytest.raises(InputError):
            resolve_precision(bad, cpu)
    # bf16 autocast + channels_last on the CPU: trains, saves float32 weights that load and resume
    md = tmp_path / "bf16"
    s = train(tiny_cfg(faces, md, iterations=25, precision="bf16"))
    assert s["precision"] == "bfloat16"
    rows = read_loss(md)
    assert np.mean([float(r["loss_a"]) for r in rows[-5:]]) < np.mean([float(r["loss_a"]) for r in rows[:5]])
    model, _ = load_model(md)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert train(tiny_cfg(faces, md, iterations=27, precision="bf16"))["resumed_from"] == 25


def test_auto_precision_stays_fp32_where_onednn_has_no_bf16_unit():
    # capped at AVX2, oneDNN emulates bf16 (a hq@128 step measured 13x slower than fp32): auto must pick fp32
    code = ("import torch; from swap.train.loop import resolve_precision; "
            "print(resolve_precision('auto', torch.device('cpu')))")
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "None"


def test_time_limit_and_cli_argument_errors(faces, tmp_path):
    from swap.train.cli import parse_duration
    assert parse_duration("10m") == 600 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    with pytest.raises(InputError):
        parse_duration("ten minutes")
    s = train(tiny_cfg(faces, tmp_path / "t", time_limit=1.0))
    assert s["stopped_by"] == "time limit" and s["iteration"] >= 1 and s["seconds"] < 10
    from veriswap.cli import main
    for argv in (["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(tmp_path / "x")],
                 ["train", "--faces-a", str(tmp_path / "nope"), "--faces-b", str(faces[1]), "-m", str(tmp_path / "x"),
                  "-n", "1"],
                 ["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(tmp_path / "x"),
                  "-n", "1", "--resolution", "128"],
                 ["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(tmp_path / "x"),
                  "-n", "1", "--ssim-weight", "0", "--l1-weight", "0"],
                 ["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(tmp_path / "x"),
                  "-n", "1", "--mse-weight", "-1"],
                 ["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(tmp_path / "x"),
                  "-n", "1", "--lr", "0"],
                 ["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(tmp_path / "x"),
                  "-n", "1", "--compile-mode", "fastest"],
                 ["train", "--faces-a", str(faces[0]), "--faces-b", str(faces[1]), "-m", str(tmp_path / "x"),
                  "-n", "1", "--no-warp", "--warp-to-landmarks"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2, argv
    assert not (tmp_path / "x").exists()


def test_coverage_matches_what_swap_crop_feeds_the_model(faces):
    import cv2
    from swap.train.data import load_faces
    fs = load_faces(faces[0], 64, coverage=0.75)
    train_view = center_batch(fs.images[:1], 64, 0.75)[0].permute(1, 2, 0).numpy()
    crop = cv2.imread(str(next(faces[0].glob("*.png"))))[..., ::-1]
    h = crop.shape[0]
    m = int(round(h * 0.25 / 2))
    convert_view = cv2.resize(np.ascontiguousarray(crop[m:h - m, m:h - m]), (64, 64),
                              interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    assert np.abs(train_view - convert_view).mean() < 0.03
    whole = cv2.resize(np.ascontiguousarray(crop), (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    assert np.abs(train_view - whole).mean() > 0.05   # and it is not the whole crop

"""`veriswap sort` on real faces: the astronaut photo with her head turned (yaw and pitch, by mapping the face
onto a cylinder and turning it) through `extract`, a Grace Hopper face from train's fixture and one without a
faces.json entry, and bad crops made from the astronaut's own crops: two blurred copies, a dark copy, a
mirrored crop and an upside-down (rotated 180 deg) one."""
from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import make_faces_dir  # noqa: E402

from swap import faces as F  # noqa: E402
from swap.extract import extract  # noqa: E402
from swap.samples import load_photo, save_photo  # noqa: E402
from swap.sort import REJECTED, SortSettings, restore_faces, sort_faces  # noqa: E402
from swap.video import list_images  # noqa: E402

YAWS = (-30, -20, -10, 0, 10, 20, 30)
BLURRY = {"blurred_a.png", "blurred_b.png", "dark.png"}
OTHERS = {"grace_hopper_000000_0.png", "grace_turned.png", "upside_down.png"}   # not her / not a usable crop


def _tag(v: int) -> str:
    return f"{'m' if v < 0 else 'p'}{abs(v):02d}"


def crop_name(kind: str, v: int) -> str:
    return f"{kind}_{_tag(v)}_000000_0.png"


def turn(img: np.ndarray, yaw: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """The photo with the head turned: the face mapped onto a cylinder through its nose (vertical axis for
    yaw, horizontal for pitch), the cylinder turned and projected back; outside it the image just shifts."""
    lm = F.landmarks(img, F.detect(img)[0][:4])
    c, r = lm[27:31].mean(0), float(np.linalg.norm(lm[0] - lm[16])) / 2
    h, w = img.shape[:2]

    def axis(n: int, c0: float, deg: float) -> np.ndarray:
        d, a = np.arange(n, dtype=np.float32) - c0, math.radians(deg)
        on = c0 + r * np.sin(np.arcsin(np.clip(d / r, -1, 1)) - a)
        off = c0 + np.where(d > 0, d - r + r * math.cos(a), d + r - r * math.cos(a))
        return np.where(np.abs(d) < r, on, off).astype(np.float32)

    mx = np.ascontiguousarray(np.broadcast_to(axis(w, c[0], yaw)[None], (h, w)))
    my = np.ascontiguousarray(np.broadcast_to(axis(h, c[1], pitch)[:, None], (h, w)))
    return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _write(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("sort")
    astro = load_photo("astronaut")
    views = root / "views"
    views.mkdir()
    for y in YAWS:
        _write(views / f"yaw_{_tag(y)}.png", turn(astro, yaw=y))
    for p in (-20, 20):
        _write(views / f"pitch_{_tag(p)}.png", turn(astro, pitch=p))
    ref = save_photo("astronaut", root / "astronaut.png")
    faces = root / "faces"
    inputs = sorted(views.iterdir())
    extract(inputs, faces, ref_face=ref, jobs=2)        # --ref-face drops HOG's hit on her mission patch
    extracted = {p.name for p in list_images(faces)}
    assert len(extracted) == 9
    # Grace Hopper: one face with a faces.json entry (train's fixture), one turned view without
    grace = make_faces_dir(root / "grace", "grace_hopper", 256)
    doc = json.loads((faces / "faces.json").read_text())
    doc["faces"].update(json.loads((grace / "faces.json").read_text())["faces"])
    (faces / "faces.json").write_text(json.dumps(doc))
    shutil.copy(grace / "grace_hopper_000000_0.png", faces)
    g = F.FaceAnalyzer().analyze(turn(load_photo("grace_hopper"), yaw=15), 256, embed=False)[0]
    _write(faces / "grace_turned.png", g.crop)
    # bad crops of her own face, no faces.json entries: scored from their pixels
    c0, c20 = _read(faces / crop_name("yaw", 0)), _read(faces / crop_name("yaw", 20))
    _write(faces / "blurred_a.png", cv2.GaussianBlur(c0, (0, 0), 4))
    _write(faces / "blurred_b.png", cv2.GaussianBlur(c20, (0, 0), 6))
    _write(faces / "dark.png", (c0 * 0.35).astype(np.uint8))
    _write(faces / "mirrored_yaw_p20.png", c20[:, ::-1])
    _write(faces / "upside_down.png", c0[::-1, ::-1])
    no_face = root / "rocket.png"
    _write(no_face, astro[0:260, 340:512])
    return SimpleNamespace(faces=faces, inputs=inputs, ref=ref, extracted=extracted, no_face=no_face,
                           all={p.name for p in list_images(faces)})


@pytest.fixture
def folder(world, tmp_path):
    """A private copy of the faces folder (sort writes sort.json and moves files)."""
    return Path(shutil.copytree(world.faces, tmp_path / "faces"))


def cli(*args) -> int:
    from veriswap.cli import main

    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code


def listing(folder: Path) -> tuple:
    rej = folder / REJECTED
    return ({p.name for p in list_images(folder)}, {p.name for p in list_images(rej)} if rej.is_dir() else set())


# ---- scores and rankings ----------------------------------------------------------------------------

def test_blur_ranks_the_blurred_copies_last_from_extracts_stored_scores(folder):
    report = sort_faces(folder, SortSettings(by="blur"))
    names = [f.file for f in report.ranked]
    assert set(names[-2:]) == {"blurred_a.png", "blurred_b.png"}
    assert names[-3] == "dark.png"          # a dark crop has little contrast: low Laplacian variance too
    # extract's stored scores are used as they are; crops without an entry are read from disk
    entries = json.loads((folder / "faces.json").read_text())["faces"]
    for f in report.ranked:
        if f.file in entries:
            assert f.scored_from == "faces.json" and f.blur == pytest.approx(entries[f.file]["blur"])
        else:
            assert f.scored_from == "pixels" and f.blur > 0
    # sort.json: every face with its score and (no rule given) no reason to reject it; written atomically
    doc = json.loads((folder / "sort.json").read_text())
    assert doc["format"] == "veriswap-sort" and doc["ranking"] == names and set(doc["faces"]) == set(names)
    assert all(v["blur"] is not None and v["reject"] == {} and v["in"] == "top" for v in doc["faces"].values())
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_scores_from_faces_json_agree_with_scores_from_pixels(world):
    s = dict(by="yaw", keep=100, max_distance=1.0)       # computes blur, identity, yaw and pitch
    fast = {f.file: f for f in sort_faces(world.faces, SortSettings(**s), write=False).faces}
    slow = {f.file: f for f in sort_faces(world.faces, SortSettings(**s, rescore=True), write=False).faces}
    assert all(f.scored_from == "pixels" for f in slow.values())
    for name in world.extracted:
        a, b = fast[name], slow[name]
        assert a.scored_from == "faces.json" and a.landmarks == "faces.json" and b.landmarks == "detected"
        assert b.blur == pytest.approx(a.blur, rel=1e-3)                  # the same crop, the same formula
        assert abs(a.yaw - b.yaw) < 5 and abs(a.pitch - b.pitch) < 5      # frame landmarks vs crop landmarks
        assert abs(a.identity - b.identity) < 0.05


def test_identity_puts_the_other_person_last_and_max_distance_rejects_them(world, folder, capsys):
    assert cli("sort", folder, "--by", "identity", "--max-distance", "0.55", "--json", "--no-progress") == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["ranking"][-3:]) == OTHERS
    assert {k for k, v in doc["faces"].items() if v["reject"]} == OTHERS
    assert all(set(doc["faces"][k]["reject"]) == {"identity"} for k in OTHERS)
    assert doc["faces"]["mirrored_yaw_p20.png"]["identity"] < 0.3     # her mirror image is still her
    assert doc["reference"]["identity"].startswith("median of 16")
    assert json.loads((folder / "sort.json").read_text())["ranking"] == doc["ranking"]
    # against a photo of her: extract's 0.6 applies without --max-distance
    assert cli("sort", folder, "--by", "identity", "--ref-face", world.ref, "--json", "--no-progress") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["max_distance"] == 0.6
    assert {k for k, v in doc["faces"].items() if v["reject"]} == OTHERS
    assert doc["ranking"][0] == crop_name("yaw", 0)      # the reference photo itself, unturned


def test_yaw_follows_the_head_turn_and_flips_in_a_mirrored_crop(world):
    r = sort_faces(world.faces, SortSettings(by="yaw"), write=False)
    yaw = {f.file: f.yaw for f in r.ranked}
    assert [f.yaw for f in r.ranked] == sorted(yaw.values())              # ranked by value
    turned = [yaw[crop_name("yaw", y)] for y in YAWS]
    assert turned == sorted(turned) and turned[-1] - turned[0] > 30, turned
    assert yaw["mirrored_yaw_p20.png"] == pytest.approx(-yaw[crop_name("yaw", 20)], abs=4)
    assert yaw["blurred_b.png"] == pytest.approx(yaw[crop_name("yaw", 20)], abs=4)   # read from a blurred crop
    pitch = {f.file: f.pitch for f in sort_faces(world.faces, SortSettings(by="pitch"), write=False).ranked}
    # turned down (pitch_p20), level, turned up (pitch_m20): the estimate rises
    assert pitch[crop_name("pitch", 20)] < pitch[crop_name("yaw", 0)] < pitch[crop_name("pitch", -20)]


def test_hist_ranks_the_dark_copy_last(world):
    r = sort_faces(world.faces, SortSettings(by="hist"), write=False)
    assert r.ranked[-1].file == "dark.png" and r.ranked[-1].hist > 2 * r.ranked[-2].hist


@pytest.mark.parametrize("n", [1, 4, 7])
def test_keep_n_keeps_exactly_n_spread_over_yaw(world, n):
    r = sort_faces(world.faces, SortSettings(by="blur", keep=n, reject_blur=10, max_distance=0.55), write=False)
    assert len(r.kept) == n
    cands = [f for f in r.ranked if "blur" not in f.reject and "identity" not in f.reject]
    assert len(cands) == 10 and all(set(f.reject) == {"keep"} for f in cands if f.reject)
    if n == 1:
        assert r.kept[0] is max(cands, key=lambda f: f.blur)
    if n == 4:
        lo, hi = r.reference["keep_bins"]["yaw"]
        quarter = lambda f: min(int((f.yaw - lo) / (hi - lo) * 4), 3)  # noqa: E731
        assert sorted(quarter(f) for f in r.kept) == [0, 1, 2, 3]
        for f in r.kept:            # each the sharpest of its yaw bin
            assert f.blur == max(g.blur for g in cands if quarter(g) == quarter(f))
        # not just the sharpest four: those sit in the middle of the yaw range
        sharpest = sorted(cands, key=lambda f: -f.blur)[:4]
        span = lambda fs: max(f.yaw for f in fs) - min(f.yaw for f in fs)  # noqa: E731
        assert span(r.kept) > 1.5 * span(sharpest)


# ---- apply / restore ----------------------------------------------------------------------------

def test_apply_moves_exactly_the_rejected_out_of_training_and_restore_brings_them_back(world, folder, capsys):
    from swap.train.data import load_faces

    args = ["sort", folder, "--by", "identity", "--max-distance", "0.55", "--reject-blur", "10", "--no-progress"]
    assert cli(*args) == 0          # without --apply: only the table and sort.json
    out = capsys.readouterr().out
    assert "rejected 6 of 16 (blur 3, identity 3), moved 0" in out and "--apply" in out
    assert listing(folder) == (world.all, set())

    assert cli(*args, "--apply") == 0
    assert "moved 6" in capsys.readouterr().out
    doc = json.loads((folder / "sort.json").read_text())
    moved = {k for k, v in doc["faces"].items() if v["moved"]}
    assert moved == BLURRY | OTHERS
    assert listing(folder) == (world.all - moved, moved)
    assert set(load_faces(folder, 64).files) == world.all - moved      # train no longer sees them
    assert doc["faces"]["grace_turned.png"]["moved"]["reject"]["identity"].startswith("identity distance 0.6")
    assert doc["faces"]["blurred_a.png"]["in"] == "rejected"
    assert "grace_hopper_000000_0.png" in json.loads((folder / "faces.json").read_text())["faces"]   # kept

    assert cli(*args, "--apply") == 0        # the same again: nothing more to move
    assert "rejected 0 of 10 (none), moved 0" in capsys.readouterr().out
    assert listing(folder) == (world.all - moved, moved)
    assert {k for k, v in json.loads((folder / "sort.json").read_text())["faces"].items() if v["moved"]} == moved

    assert cli("sort", folder, "--restore") == 0
    assert "6 face(s) moved back" in capsys.readouterr().out
    assert listing(folder) == (world.all, set()) and not (folder / REJECTED).exists()
    assert set(load_faces(folder, 64).files) == world.all
    assert cli("sort", folder, "--restore") == 0
    assert "0 face(s) moved back" in capsys.readouterr().out


def test_an_interrupted_apply_ends_the_same_when_run_again(world, tmp_path, monkeypatch):
    import swap.sort.moves as S

    settings = SortSettings(by="blur", keep=4, reject_blur=10)
    whole = Path(shutil.copytree(world.faces, tmp_path / "whole"))
    sort_faces(whole, settings).apply()
    assert len(listing(whole)[0]) == 4

    cut = Path(shutil.copytree(world.faces, tmp_path / "cut"))
    real, calls = S._move, []

    def move(a, b):                 # Ctrl-C after the third move
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(a)
        real(a, b)
    monkeypatch.setattr(S, "_move", move)
    with pytest.raises(KeyboardInterrupt):
        sort_faces(cut, settings).apply()
    monkeypatch.undo()
    assert len(listing(cut)[1]) == 3        # every file whole, in one place or the other
    assert sum(bool(v["moved"]) for v in json.loads((cut / "sort.json").read_text())["faces"].values()) == 3
    sort_faces(cut, settings).apply()
    assert listing(cut) == listing(whole)   # the same 4 kept: --keep's pick is stable under removals
    doc = json.loads((cut / "sort.json").read_text())
    assert all(v["moved"]["reject"] and "unknown" not in v["moved"]["reject"]
               for v in doc["faces"].values() if v["in"] == "rejected")


def test_restore_after_an_extract_rerun_puts_back_the_dropped_faces_json_entries(world, folder):
    report = sort_faces(folder, SortSettings(by="blur", keep=3))
    report.apply()
    moved = set(report.moved) & (world.extracted | {"grace_hopper_000000_0.png"})   # those with entries
    assert len(moved) >= 5
    # extract again into the same folder (sources unchanged: resumed, no crops made); it drops the
    # faces.json entries whose PNG is gone
    extract(world.inputs, folder, ref_face=world.ref, jobs=1)
    assert moved.isdisjoint(json.loads((folder / "faces.json").read_text())["faces"])
    r = restore_faces(folder)
    assert set(r.restored) == set(report.moved) and r.entries_restored == len(moved) and not r.conflicts
    entries = json.loads((folder / "faces.json").read_text())["faces"]
    assert moved <= set(entries) and all(len(entries[n]["landmarks"]) == 68 for n in moved)
    # and sort scores them from faces.json again, not from their pixels
    assert all(f.scored_from == "faces.json" for f in sort_faces(folder, SortSettings(), write=False).faces
               if f.file in moved)


# ---- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, message", [
    ("missing", "faces folder not found"),
    ("empty", "no face images"),
    ("by", "unknown --by 'nose'; choose from blur, identity, yaw, pitch, hist"),
    ("keep", "--keep must be >= 1"),
    ("faces_json", "unreadable"),
    ("ref_face", "no face found in the reference image"),
    ("restore_apply", "--restore and --apply cannot be combined"),
    ("busy", "is in use by veriswap extract"),
])
def test_bad_input_is_one_error_line_and_exit_2(world, tmp_path, capsys, case, message):
    d = tmp_path / "faces"
    d.mkdir()
    if case not in ("empty",):
        shutil.copy(world.faces / crop_name("yaw", 0), d)
        shutil.copy(world.faces / "faces.json", d)
    args = {"missing": [tmp_path / "nope"], "empty": [d], "by": [d, "--by", "nose"], "keep": [d, "--keep", "0"],
            "faces_json": [d], "ref_face": [d, "--by", "identity", "--ref-face", world.no_face],
            "restore_apply": [d, "--restore", "--apply"], "busy": [d, "--keep", "1", "--apply"]}[case]
    if case == "faces_json":
        (d / "faces.json").write_text('{"version": 1, "size": 256, "faces": {"x.png": [')
    from swap.lock import folder_lock
    with folder_lock(d, "veriswap extract") if case == "busy" else contextlib.nullcontext():
        assert cli("sort", *args) == 2         # busy: an extract is writing the folder, so nothing moves
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (d / "sort.json").exists() and not (d / REJECTED).exists()

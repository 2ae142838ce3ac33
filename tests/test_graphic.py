"""The graphics-based swap (swap.graphic) on real faces: the astronaut's face warped onto a video of Grace
Hopper (and back); the output's frames, audio, labels, masks, manifest and the identity it shows."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from swap import alignments as A
from swap.errors import InputError
from swap.extract import extract
from swap.faces import FaceAnalyzer, distance
from swap.graphic import METHOD, GraphicSwapSettings, graphic_swap, load_source, swap_frame
from swap.graphic.warp import extend_landmarks, triangulate, warp_face
from swap.samples import load_photo, make_face_video, motion_matrix, save_photo
from swap.video import iter_frames, probe

N = 12
SIZE = (480, 360)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from provenance.keys import generate_identity

    d = tmp_path_factory.mktemp("graphic")
    video = make_face_video(d / "grace.mp4", "grace_hopper", frames=N, size=SIZE)
    extract([video], d / "faces")
    keys = d / "keys"
    generate_identity(keys)
    src = save_photo("astronaut", d / "astronaut.png")
    out = d / "out" / "swapped.mp4"
    s = graphic_swap(GraphicSwapSettings(source=str(src), target=str(video), out=str(out),
                                         alignments=str(d / "faces" / "alignments.json"), key_dir=str(keys)))
    return {"dir": d, "video": video, "aln": d / "faces" / "alignments.json", "keys": keys, "src": src,
            "out": out, "summary": s}


def test_output_decodes_with_frames_timing_and_audio(setup):
    src, dst = probe(setup["video"]), probe(setup["out"])
    assert (dst.width, dst.height, dst.frames) == (src.width, src.height, N)
    assert abs(dst.fps - src.fps) < 1e-6 and dst.has_audio
    s = setup["summary"]
    assert (s.frames, s.frames_swapped, s.faces_swapped) == (N, N, N) and s.fps > 0 and not s.warnings
    # only the face changed: outside the applied mask the frames stay the target's (up to H.264)
    labels_dir = setup["out"].with_suffix(".labels")
    for a, b in zip(iter_frames(setup["video"]), iter_frames(setup["out"])):
        m = cv2.imread(str(labels_dir / "masks" / f"{a.index:06d}.png"), 0)
        outside = cv2.dilate((m > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        inside = m > 200
        diff = np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean(2)
        assert diff[outside].mean() < 4.0 and diff[inside].mean() > 3 * diff[outside].mean(), a.index


def test_labels_are_convert_labels_of_their_own_method(setup):
    from detect.dataset import manipulation
    from swap.labels import read_labels

    lp = setup["out"].with_suffix(".labels") / "labels.json"
    labels = read_labels(lp)        # the one reader convert's labels go through
    assert labels.model["architecture"] == METHOD and labels.model["sha256"] is None
    assert manipulation(labels) == "veriswap graphic-faceswap a2b"    # its own row in detect's per-method tables
    assert labels.model["identities"] == {"a": "grace", "b": "astronaut"} and labels.direction == "a2b"
    sf = labels.model["source_face"]
    assert sf["sha256"].startswith("sha256:") and len(sf["landmarks"]) == 68 and sf["name"] == "astronaut"
    assert labels.counts["frames_swapped"] == N and len(labels.frames) == N
    assert labels.c2pa_manifest == setup["summary"].manifest and labels.swapped_frames == f"0-{N - 1}"
    rec = A.load(setup["aln"]).source_for(setup["video"])
    for fr in labels.frames:
        assert fr.swapped and fr.mask == f"masks/{fr.index:06d}.png"
        (face,) = fr.faces
        assert face.box == rec.frames[fr.index][0].box and len(face.landmarks) == 68 and face.mask_pixels > 0


def test_masks_cover_the_face(setup):
    """The mask covers the face the landmarks outline (eyes, nose, mouth, jaw) and not much beyond it."""
    labels_dir = setup["out"].with_suffix(".labels")
    labels = json.loads((labels_dir / "labels.json").read_text())
    for fr in labels["frames"]:
        m = cv2.imread(str(labels_dir / fr["mask"]), 0)
        assert m.shape == (SIZE[1], SIZE[0])
        pts = np.asarray(fr["faces"][0]["landmarks"], np.float32)
        inner = np.zeros_like(m)
        cv2.fillConvexPoly(inner, cv2.convexHull(np.round(pts[[*range(17, 27), *range(36, 68)]]).astype(np.int32)), 1)
        hull = np.zeros_like(m)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(extend_landmarks(pts)).astype(np.int32)), 1)
        assert (m[inner > 0] > 127).mean() > 0.95          # eyes, brows, nose, mouth all inside
        assert (m[hull == 0] > 127).mean() < 0.01          # nothing outside the (forehead-extended) hull


def test_swapped_face_shows_the_source_identity(setup):
    """dlib's identity embedding of the swapped face is closer to the source (astronaut) than the target's
    own face was, and within dlib's same-person threshold (0.6)."""
    fa = FaceAnalyzer(upsample=1)
    src_emb = load_source(setup["src"]).embedding
    before, after = [], []
    for a, b in zip(iter_frames(setup["video"], every=3), iter_frames(setup["out"], every=3)):
        fa_, fb = fa.analyze(a.rgb, size=64), fa.analyze(b.rgb, size=64)
        assert fa_ and fb, a.index
        before.append(distance(fa_[0].embedding, src_emb))
        after.append(distance(fb[0].embedding, src_emb))
    assert max(after) < min(before) and max(after) < 0.6, (before, after)


def test_manifest_is_signed_and_declares_the_method(setup):
    from provenance.c2pa_verify import verify_file

    rep = verify_file(setup["out"], trust_anchors=[setup["keys"] / "root.pem"])
    assert rep.state == "trusted"
    assert rep.swap["model_name"] == METHOD and rep.swap["method"] == METHOD
    assert rep.swap["frames_swapped"] == N and rep.swap["swapped_frames"] == f"0-{N - 1}"
    assert "compositeWithTrainedAlgorithmicMedia" in rep.to_json()


def test_the_other_way_without_alignments_or_signature(setup, tmp_path):
    """Grace Hopper onto a video of the astronaut, landmarks from a fresh extract, Poisson blend, unsigned;
    the astronaut photo's second (false) detection stays unswapped with faces='largest'."""
    video = make_face_video(tmp_path / "astro.mp4", "astronaut", frames=4, size=SIZE)
    src = save_photo("grace_hopper", tmp_path / "grace.png")
    out = tmp_path / "o.mp4"
    s = graphic_swap(GraphicSwapSettings(source=str(src), target=str(video), out=str(out), blend="seamless",
                                         sign=False))
    assert s.frames == 4 and s.frames_swapped == 4 and s.faces_swapped == 4 and s.manifest is None
    assert probe(out).has_audio
    labels = json.loads((tmp_path / "o.labels" / "labels.json").read_text())
    assert "c2pa_manifest" not in labels and labels["settings"]["blend"] == "seamless"
    assert not list(tmp_path.glob(".o.mp4.*"))       # the work folder is gone


def test_swap_frame_on_a_still_moves_identity(tmp_path):
    """The library call on one frame: the astronaut's texture on Grace Hopper's landmarks, every blend and
    colour mode; the mask returned is where pixels changed."""
    fa = FaceAnalyzer(upsample=1)
    src = save_photo("astronaut", tmp_path / "a.png")
    source = load_source(src)
    g = load_photo("grace_hopper")
    frame = cv2.warpAffine(g, motion_matrix(g.shape, 0.3, SIZE), SIZE)
    (tf,) = fa.analyze(frame, size=64)
    d0 = distance(tf.embedding, source.embedding)
    for color in ("lab", "avg", "none"):
        for blend in ("alpha", "seamless"):
            fr = frame.copy()
            m, _ = swap_frame(fr, source, tf.landmarks, color, blend)
            changed = np.abs(fr.astype(int) - frame.astype(int)).max(2) > 0
            assert not changed[m == 0].any() and changed[m > 127].mean() > 0.9
            (nf,) = fa.analyze(fr, size=64)
            assert distance(nf.embedding, source.embedding) < d0 - 0.05, (color, blend)


def test_mirror_and_yaw():
    """The mirrored source's landmarks are the mirrored image's (same fit, renumbered), and the yaw cue
    flips with it; a source padded for its forehead points keeps the points on the same pixels."""
    from swap.graphic.warp import MIRROR_68, mirror, pad_to_points, yaw_ratio

    assert sorted(MIRROR_68) == list(range(68)) and (MIRROR_68[MIRROR_68] == np.arange(68)).all()
    img = load_photo("grace_hopper")
    fa = FaceAnalyzer(upsample=1)
    pts = fa.analyze(img, size=64)[0].landmarks
    flipped, mp = mirror(img, pts)
    fit = fa.analyze(flipped, size=64)[0].landmarks
    assert np.abs(fit - mp).mean() < 2.0
    assert abs((yaw_ratio(pts) - 0.5) + (yaw_ratio(mp) - 0.5)) < 1e-6
    top = np.array([[10.0, -20.0], [600.0, 700.0]], np.float32)
    padded, shifted = pad_to_points(img, top)
    assert (shifted >= 0).all() and (shifted < padded.shape[1::-1]).all()
    off = (shifted - top)[0].astype(int)
    assert (padded[off[1]:off[1] + img.shape[0], off[0]:off[0] + img.shape[1]] == img).all()


def test_warp_onto_its_own_landmarks_is_the_identity():
    img = load_photo("astronaut")
    fa = FaceAnalyzer(upsample=1)
    pts = extend_landmarks(fa.analyze(img, size=64)[0].landmarks)
    tris = triangulate(pts)
    assert 100 < len(tris) < 160 and tris.max() == len(pts) - 1
    warped, cover, (x0, y0, x1, y1) = warp_face(img, pts, pts, tris, img.shape)
    inside = cover > 0
    assert inside.mean() > 0.5
    diff = np.abs(warped.astype(int) - img[y0:y1, x0:x1].astype(int))[inside]
    assert diff.mean() < 1.0


def test_source_from_an_extract_faces_folder(setup, tmp_path):
    """A faces folder (its sharpest crop and stored landmarks) or one crop of it works as the source."""
    faces = tmp_path / "faces"
    extract([setup["src"]], faces)
    sf = load_source(faces)
    assert sf.landmarks.shape == (68, 2) and sf.embedding is not None and sf.rgb.shape[0] == 256
    crop = next(p for p in faces.iterdir() if p.suffix == ".png")
    assert load_source(crop).name == crop.stem
    out = tmp_path / "f.mp4"
    s = graphic_swap(GraphicSwapSettings(source=str(faces), target=str(setup["video"]), out=str(out),
                                         alignments=str(setup["aln"]), sign=False))
    assert s.faces_swapped == N


def test_bad_input_is_a_clear_error(setup, tmp_path):
    ok = dict(source=str(setup["src"]), target=str(setup["video"]), out=str(tmp_path / "x.mp4"))
    bad = [
        (dict(source=str(tmp_path / "none.png")), "no such source"),
        (dict(target=str(tmp_path / "none.mp4")), "no such target"),
        (dict(target=str(setup["src"])), "must be a video"),
        (dict(out=str(tmp_path / "x.avi")), ".mp4 or .mov"),
        (dict(out=str(setup["video"])), "overwrite"),
        (dict(color="rainbow"), "colour correction"),
        (dict(blend="smudge"), "blend"),
        (dict(faces="some"), "faces must be"),
        (dict(erode=2.0), "erode"),
        (dict(crf=99), "crf"),
        (dict(source_face=-1), "source_face"),
        (dict(alignments=str(tmp_path / "none.json")), "alignments"),
    ]
    for change, words in bad:
        with pytest.raises(InputError, match=words):
            GraphicSwapSettings(**(ok | change))
    with pytest.raises(InputError, match="not an extract faces folder"):
        graphic_swap(GraphicSwapSettings(**(ok | {"source": str(tmp_path)}), sign=False))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(InputError, match="no face found"):
        graphic_swap(GraphicSwapSettings(**(ok | {"source": str(blank)}), sign=False))
    with pytest.raises(InputError, match="has 1 face"):
        load_source(save_photo("grace_hopper", tmp_path / "g.png"), 3)
    assert not (tmp_path / "x.mp4").exists()


def test_cli_command(setup, tmp_path):
    """swap/graphic/cli.py's command (mounted by veriswap/cli.py as `graphic-swap`): a summary on success;
    bad input surfaces as InputError, which veriswap.cli.main turns into one line and exit 2."""
    import typer
    from typer.testing import CliRunner

    from swap.graphic.cli import graphic_swap_command

    app = typer.Typer()
    app.command()(graphic_swap_command)
    app.command("other")(lambda: None)      # two commands: typer keeps the command name as a subcommand
    runner = CliRunner()
    out = tmp_path / "c.mp4"
    r = runner.invoke(app, ["graphic-swap-command", str(setup["src"]), str(setup["video"]), "-o", str(out),
                            "--alignments", str(setup["aln"]), "-k", str(setup["keys"]), "--no-progress",
                            "--blend", "seamless"])
    assert r.exit_code == 0, r.output
    assert f"{N} faces swapped" in r.output and "C2PA manifest urn:" in r.output and out.is_file()
    r = runner.invoke(app, ["graphic-swap-command", str(setup["src"]), str(setup["src"]), "-o", str(out)])
    assert isinstance(r.exception, InputError) and r.exception.exit_code == 2
    assert "must be a video" in str(r.exception)


def test_graphic_swap_is_mounted_on_the_veriswap_command():
    """`veriswap graphic-swap --help` through the real entry module (a fresh interpreter), and mounting it
    keeps `import veriswap.cli` light (swap.graphic loads numpy/cv2 only when a swap runs)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "veriswap.cli", "graphic-swap", "--help"], cwd=root,
                       capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "graphic-swap" in r.stdout and "--output" in r.stdout and "--alignments" in r.stdout
    code = ("import sys, veriswap.cli, swap.graphic.cli; "
            "bad = [m for m in ('torch', 'cv2', 'av', 'dlib') if m in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

"""Swap quality (swap/quality.py): ID retrieval among all known identities, absolute dlib distance vs 0.6,
pose/expression error vs the source, detail index, inner-face detail vs the source. A blur and an
autoencoder-like blob must fail; a real face of the target passes."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("dlib")

from swap import faces as F  # noqa: E402
from swap import quality as Q  # noqa: E402
from swap.samples import load_photo  # noqa: E402


@pytest.fixture(scope="module")
def world():
    fa = F.FaceAnalyzer()
    ast, gr = load_photo("astronaut"), load_photo("grace_hopper")
    # the target in another frame: rotated, scaled, shifted, re-lit (not the gallery's own photo)
    m = cv2.getRotationMatrix2D((256, 256), 8, 0.8)
    m[:, 2] += (20, -10)
    frame = np.clip(cv2.warpAffine(ast, m, (512, 512), borderMode=cv2.BORDER_REFLECT) * 0.85 + 10, 0, 255)
    target = fa.analyze(frame.astype(np.uint8), size=256)[0].crop
    source = fa.analyze(gr, size=256)[0].crop            # the face the swap replaced (Grace Hopper)
    blob = np.full_like(target, (200, 150, 130))
    cv2.ellipse(blob, (128, 140), (70, 95), 0, 0, 360, (225, 180, 160), -1)
    blob = cv2.GaussianBlur(blob, (0, 0), 10)
    return {"fa": fa, "gallery": Q.builtin_gallery(), "target": target, "source": source, "blob": blob,
            "ae_blob": ae_blob(target, fa)}


def ae_blob(face: np.ndarray, fa) -> np.ndarray:
    """What a 64 px autoencoder makes after a minute of training, from a real face: the face region (hull of
    its landmarks, soft edge) smoothed flat (sigma 10 px) plus a deconvolution checkerboard at the model's
    pixel pitch (4 px here: 2 px, Nyquist, at 64 px), +-5 grey levels. The old detail index calls it sharp."""
    pts = Q.analyse_crop(face, fa, embed=False)[0]
    mask = np.zeros(face.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 3)[..., None]
    yy, xx = np.mgrid[:face.shape[0], :face.shape[1]]
    checker = np.where((yy // 4 + xx // 4) % 2, 5.0, -5.0)[..., None]
    flat = cv2.GaussianBlur(face, (0, 0), 10).astype(np.float32) + checker
    return np.clip(face * (1 - mask) + flat * mask, 0, 255).astype(np.uint8)


def test_real_face_of_the_target_passes(world):
    q = Q.measure_face(world["target"], world["source"], "astronaut", world["gallery"], analyzer=world["fa"])
    assert q.passed, q.failures
    assert q.retrieved and q.nearest == "astronaut" and q.same_person and q.distance < 0.3
    assert q.face_found and q.pose_error < 5 and q.expression_error < 0.1 and q.sharpness > 0.5
    # another person's face (Grace Hopper's wrinkles and glasses) as the source: 0.57 of its fine detail
    assert q.detail_vs_source >= Q.QualityThresholds().min_detail_vs_source
    same = Q.measure_face(world["target"], world["target"], "astronaut", world["gallery"], analyzer=world["fa"])
    assert same.passed and same.detail_vs_source == pytest.approx(1.0)
    # a 64 px rendering of it (the 'original' model's resolution) is not penalised for its resolution
    small = cv2.resize(world["target"], (64, 64), interpolation=cv2.INTER_AREA)
    q64 = Q.measure_face(small, world["source"], "astronaut", world["gallery"], analyzer=world["fa"])
    assert q64.passed, q64.failures


def test_blurs_fail(world):
    g, fa = world["gallery"], world["fa"]
    blurred = cv2.GaussianBlur(world["target"], (0, 0), 8)
    q = Q.measure_face(blurred, world["source"], "astronaut", g, analyzer=fa)
    assert not q.passed and any("blur" in f for f in q.failures) and q.sharpness < 0.15
    assert q.detail_vs_source < 0.3                       # a blur is also short of the source's fine detail
    b = Q.measure_face(world["blob"], world["source"], "astronaut", g, analyzer=fa)
    assert not b.passed
    assert b.distance >= 0.6 and not b.same_person and b.sharpness < 0.15
    # ... while the old rule ("closer to the target than to the source identity") called the blob a success
    assert F.distance(fa.embed_crop(world["blob"]), g.centroid("astronaut")) < \
        F.distance(fa.embed_crop(world["blob"]), g.centroid("grace_hopper"))


def test_autoencoder_blob_fails_on_detail_vs_source(world):
    """A blob made from the target's own face, in her own frame: it keeps her identity for dlib (0.54, < 0.6),
    her pose and expression, and the old detail index calls it sharp (the checkerboard over a flat face):
    only the inner-face detail against the face it replaced fails it."""
    g, fa = world["gallery"], world["fa"]
    th = Q.QualityThresholds()
    q = Q.measure_face(world["ae_blob"], world["target"], "astronaut", g, analyzer=fa)
    assert q.retrieved and q.same_person and q.pose_error < 5 and q.sharpness > th.min_sharpness
    assert not q.passed and q.detail_vs_source < 0.3
    assert q.failures == [f for f in q.failures if f.startswith("relative detail")] and len(q.failures) == 1
    # against another person's frame too, and the real face at the same place passes
    assert Q.measure_face(world["ae_blob"], world["source"], "astronaut", g, analyzer=fa).detail_vs_source < 0.3
    assert Q.detail_vs_source(world["target"], world["target"], Q.analyse_crop(world["target"], fa, False)[0]) \
        == pytest.approx(1.0)


def test_wrong_pose_fails(world):
    rot = cv2.warpAffine(world["target"], cv2.getRotationMatrix2D((128, 128), 25, 1.0), (256, 256),
                         borderMode=cv2.BORDER_REFLECT)
    q = Q.measure_face(rot, world["source"], "astronaut", world["gallery"], analyzer=world["fa"])
    assert not q.passed and q.roll_error == pytest.approx(25, abs=5) and any("pose" in f for f in q.failures)


def test_report_and_gallery(world):
    g = world["gallery"]
    assert set(g.names) >= {"astronaut", "grace_hopper"}
    r = Q.measure_swaps([world["target"], world["blob"]], [world["source"]] * 2, "astronaut", g,
                        analyzer=world["fa"])
    assert r.n == 2 and r.passed == 1 and r.pass_rate == 0.5 and r.same_person == 0.5
    assert "1/2 faces pass" in r.summary() and "ID retrieval" in r.summary()
    assert "faces" not in r.to_dict() and len(r.to_dict(faces=True)["faces"]) == 2
    # a pair gallery (A, B) does not take the built-in astronaut as a second identity when B is her
    pair = Q.Gallery({"A": g.embeddings["grace_hopper"], "B": g.embeddings["astronaut"]})
    added = pair.add_distractors(g)
    assert "astronaut" not in added and "grace_hopper" not in added and pair.names[:2] == ["A", "B"]
    assert pair.names[2:] == added                          # the wheels' people, where their wheels are on disk
    with pytest.raises(Exception, match="not in the gallery"):
        pair.centroid("nobody")


def test_landmark_errors_separate_pose_from_expression():
    rng = np.random.default_rng(0)
    pts = rng.uniform(50, 200, (68, 2))
    pts[36:42] = [60, 100] + rng.normal(0, 1, (6, 2))     # eyes apart, so the IOD is defined
    pts[42:48] = [160, 100] + rng.normal(0, 1, (6, 2))
    a = math.radians(12)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = (pts - 125) @ rot.T * 1.1 + 130               # same expression, rolled 12 deg, scaled, shifted
    e = Q.landmark_errors(moved, pts)
    assert e["roll"] == pytest.approx(12, abs=0.01) and e["expression"] < 1e-6 and e["landmark"] > 0.05
    mouth = pts.copy()
    mouth[48:68, 1] += 20                                  # an open mouth: expression, not pose
    e2 = Q.landmark_errors(mouth, pts)
    assert e2["expression"] > 0.02 and e2["roll"] < 3


# ---- bench/swap_quality.py on a real labelled swap --------------------------------------------------------

N_SWAP = 6


@pytest.fixture(scope="module")
def labelled_swap(tmp_path_factory):
    """A tiny real graphic swap (the astronaut onto a clip of Grace Hopper, as bench.detect_recipe makes
    them: ROOT/fake_test/A_as_B.mp4 + labels, ROOT/real_test/A.mp4, ROOT/photos/B.png) and a blurred copy
    of it (every frame Gaussian-blurred, the same labels)."""
    import shutil

    from swap.graphic import GraphicSwapSettings, graphic_swap
    from swap.samples import make_face_video, save_photo
    from swap.video import VideoWriter, iter_frames, probe

    root = tmp_path_factory.mktemp("swapq")
    video = make_face_video(root / "real_test" / "grace_hopper.mp4", "grace_hopper", frames=N_SWAP, size=(480, 360))
    photo = save_photo("astronaut", root / "photos" / "astronaut.png")
    out = root / "fake_test" / "grace_hopper_as_astronaut.mp4"
    graphic_swap(GraphicSwapSettings(source=str(photo), target=str(video), out=str(out), sign=False))
    blurred = root / "blurred" / "grace_hopper_as_astronaut.mp4"
    info = probe(out)
    with VideoWriter(blurred, info.width, info.height, info.fps) as w:
        for fr in iter_frames(out):
            w.write(cv2.GaussianBlur(fr.rgb, (0, 0), 6))
    shutil.copytree(out.with_suffix(".labels"), blurred.with_suffix(".labels"))
    return {"root": root, "out": out, "blurred": blurred}


def test_bench_section_on_a_real_swap_and_a_blurred_copy(labelled_swap):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import swap_quality as B

    root = labelled_swap["root"]
    assert B.find_swaps(root) == [labelled_swap["out"]]        # fake*test/ first; blurred/ is not a test split
    sw = B.describe(labelled_swap["out"], root)
    assert (sw.target, sw.original, sw.method) == ("astronaut", "grace_hopper", "graphic-faceswap alpha/lab")
    assert sw.source_video == root / "real_test" / "grace_hopper.mp4"
    fa = F.FaceAnalyzer()
    blur = B.describe(labelled_swap["blurred"], root)
    gallery = B.build_gallery(root, [sw, blur], fa)
    assert {"astronaut", "grace_hopper"} <= set(gallery.names)   # the photo, and the original clip's faces
    r = B.measure_video(sw, gallery, fa)
    assert len(r.faces) == N_SWAP and not r.skipped
    # the ID check: retrieved as the astronaut among every known identity, within dlib's 0.6 of her
    # (measured 0.51-0.57), and the swap passes swap.quality as a whole (pose, expression, detail)
    assert all(q.retrieved for q in r.faces), [(q.nearest, q.distance) for q in r.faces]
    assert sum(q.same_person for q in r.faces) >= N_SWAP - 1 and B.summary([r])["distance"] < 0.6
    assert all(r.old) and B.summary([r])["pass"] >= 0.5
    rb = B.measure_video(blur, gallery, fa)
    assert len(rb.faces) == N_SWAP and not any(q.passed for q in rb.faces)
    assert all(q.sharpness < 0.15 for q in rb.faces)
    assert all(q.detail_vs_source >= 0.49 for q in r.faces) and all(q.detail_vs_source < 0.49 for q in rb.faces)
    assert sum(rb.old) >= N_SWAP // 2           # ... which the old rule ("closer to B than to A") mostly passes
    lines = B.table([r, rb])
    assert lines[0] == B.HEADER and any("graphic-faceswap alpha/lab (2 videos)" in x for x in lines)
    assert "detail (blur) 50%" in lines[-1]          # the blurred copy fails on detail, the swap does not
    assert r.seconds_ours > 0 and r.seconds_old > 0

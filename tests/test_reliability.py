"""Issue 16, swap/detect side: each case the prober found, with the exact input that failed.

Item 3: a killed save's temp files are removed by the next train and named by `veriswap model`.
Item 4: every file format is validated at load (provenance.schema): one line naming file and field, exit 2.
Item 6: extract records its work within a chunk, so a kill loses seconds, not a chunk.
(The provenance items are in test_provenance_reliability.py.)
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import make_faces_dir  # noqa: E402

from provenance import schema as S  # noqa: E402
from provenance.errors import InputError  # noqa: E402

TINY = {"resolution": 64, "e_dims": 8, "ae_dims": 32, "d_dims": 8, "mask_dims": 8}


def run(*args, cwd=None, timeout=240, env=None) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "VERISWAP_DEBUG"} | (env or {})
    return subprocess.run([sys.executable, "-m", "veriswap.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=e, stdin=subprocess.DEVNULL)


def one_line_exit_2(r: subprocess.CompletedProcess, *must: str) -> str:
    """The documented bad-input outcome: exit 2, one `error:` line (naming what it must), no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    for m in must:
        assert m in lines[0], (m, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Faces folders of two real people, a tiny trained model, and a face video with its alignments."""
    from swap.extract import ExtractSettings, extract
    from swap.samples import make_face_video
    from swap.train import TrainConfig, train

    d = tmp_path_factory.mktemp("rel")
    fa, fb = make_faces_dir(d / "fa", "astronaut"), make_faces_dir(d / "fb", "grace_hopper")
    train(TrainConfig(faces_a=str(fa), faces_b=str(fb), model_dir=str(d / "model"), model="hq",
                      model_options=dict(TINY), iterations=2, batch_size=2, save_every=1, preview_every=0,
                      progress=False, identity_check=False))
    video = make_face_video(d / "a.mp4", frames=4, size=(320, 240), audio=False)
    extract([video], d / "fv", settings=ExtractSettings(size=128), jobs=1)
    return {"d": d, "fa": fa, "fb": fb, "model": d / "model", "video": video, "aln": d / "fv" / "alignments.json",
            "env": {"VERISWAP_HOME": str(d / "home")}}


def _json_copy(world, key: str, file: str, name: str, mutate) -> Path:
    """A copy of the world's `key` folder named `name`, its `file` changed by `mutate`."""
    dst = world["d"] / name
    shutil.copytree(world[key], dst, ignore=shutil.ignore_patterns(".veriswap.lock"))
    doc = json.loads((dst / file).read_text())
    mutate(doc)
    (dst / file).write_text(json.dumps(doc))
    return dst


def _faces_copy(world, name, mutate) -> Path:
    return _json_copy(world, "fa", "faces.json", name, mutate)


def _model_copy(world, name, mutate) -> Path:
    return _json_copy(world, "model", "config.json", name, mutate)


def _train_args(world, faces_a, model_dir, iterations: int = 1):
    return ["train", "--faces-a", faces_a, "--faces-b", world["fb"], "-m", model_dir, "--iterations", str(iterations),
            "--batch-size", "2", "--no-progress", "--no-identity-check", "--model", "hq",
            *[x for k, v in TINY.items() if k != "mask_dims" for x in (f"--{k.replace('_', '-')}", str(v))]]


# ---------------------------------------------------------------- 4. faces.json (train)

def _first(doc):
    return next(iter(doc["faces"].values()))


@pytest.mark.parametrize("name,mutate,field", [
    ("ints", lambda d: d.__setitem__("faces", [1, 2, 3]), "field faces: expected an object"),   # was exit 1
    ("strings", lambda d: d["faces"].update({k: "x" for k in d["faces"]}), "field faces["),       # was exit 1
    ("lm_str", lambda d: _first(d).__setitem__("landmarks", [["a", "b"]] * 68), ".landmarks: expected 68"),
    ("lm_ragged", lambda d: _first(d).__setitem__("landmarks", [[1, 2]] * 67 + [[1]]), ".landmarks: expected 68"),
])
def test_train_refuses_a_wrongly_typed_faces_json_naming_file_and_field(world, name, mutate, field):
    faces = _faces_copy(world, f"faces_{name}", mutate)
    r = run(*_train_args(world, faces, world["d"] / f"m_{name}"), env=world["env"])
    line = one_line_exit_2(r, f"faces_{name}/faces.json", field)
    # the messages issue 16 quoted, which named no file
    assert "could not convert string to float" not in line and "inhomogeneous" not in line
    assert not (world["d"] / f"m_{name}" / "model.safetensors").exists()


def test_faces_json_that_is_a_list_names_the_top_level(world):
    from swap.train.data import load_faces

    faces = _faces_copy(world, "faces_list", lambda d: None)
    (faces / "faces.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"faces_list/faces.json: top level: expected an object"):
        load_faces(faces, 64)


# ---------------------------------------------------------------- 4. model config.json (model, train, convert)

@pytest.mark.parametrize("name,mutate,field", [
    ("arch", lambda c: c.__setitem__("architecture", ["x"]), "field architecture: expected a string"),
    ("ids", lambda c: c.__setitem__("identities", 5), "field identities: expected an object"),
    ("res", lambda c: c.__setitem__("resolution", "a"), "field resolution: expected an integer"),
    ("args", lambda c: c["model_args"].__setitem__("resolution", 65), "field model_args"),
])
def test_model_train_and_convert_refuse_a_wrongly_typed_model_config(world, name, mutate, field):
    m = _model_copy(world, f"model_{name}", mutate)
    one_line_exit_2(run("model", m, env=world["env"]), f"model_{name}/config.json", field)
    one_line_exit_2(run(*_train_args(world, world["fa"], m, iterations=9), env=world["env"]),
                    f"model_{name}/config.json", field)
    one_line_exit_2(run("convert", world["video"], "-m", m, "-o", world["d"] / f"o_{name}.mp4", "--alignments",
                        world["aln"], env=world["env"]), f"model_{name}/config.json", field)


def test_a_damaged_state_json_is_a_damaged_checkpoint_not_a_crash(world):
    from swap.models.checkpoint import verify_checkpoint

    m = world["d"] / "model_state"
    shutil.copytree(world["model"], m, ignore=shutil.ignore_patterns(".veriswap.lock"))
    st = json.loads((m / "state.json").read_text())
    st["files"] = ["model.safetensors"]
    (m / "state.json").write_text(json.dumps(st))
    ck, why = verify_checkpoint(m)
    assert ck is None and "state.json: field files: expected an object" in why
    assert verify_checkpoint(m, ".bak")[0] is not None      # the backup is what train/convert load then


# ---------------------------------------------------------------- 4. alignments (convert, extract)

def _aln_copy(world, name, mutate) -> Path:
    doc = json.loads(world["aln"].read_text())
    mutate(doc)
    p = world["d"] / f"{name}.json"
    p.write_text(json.dumps(doc))
    return p


def _all_faces(doc):
    return [f for s in doc["sources"].values() for fr in s["frames"].values() for f in fr]


@pytest.mark.parametrize("name,mutate,field", [
    ("sources", lambda d: d.__setitem__("sources", []), "field sources: expected an object"),       # was exit 1
    ("matrix", lambda d: [f.__setitem__("matrix", [[1, 0], [0, 1]]) for f in _all_faces(d)],      # was an OpenCV
     "].matrix: expected a 2x3 array of numbers, got 2x2"),                                         # assertion
    ("lm_str", lambda d: [f.__setitem__("landmarks", [["a", "b"]] * 68) for f in _all_faces(d)], "].landmarks"),
    ("singular", lambda d: [f.__setitem__("matrix", [[0, 0, 1], [0, 0, 1]]) for f in _all_faces(d)], "singular"),
])
def test_convert_refuses_wrongly_typed_alignments_naming_file_and_field(world, name, mutate, field):
    p = _aln_copy(world, f"aln_{name}", mutate)
    line = one_line_exit_2(run("convert", world["video"], "-m", world["model"], "-o", world["d"] / f"c_{name}.mp4",
                               "--alignments", p, env=world["env"]), f"aln_{name}.json", field)
    assert "OpenCV" not in line and "warpAffine" not in line


def test_extract_names_the_alignments_file_that_is_a_list_or_wrongly_typed(world):
    """extract said 'not an alignments file (bad JSON)' for a JSON list; the streamed reader checks each frame."""
    from swap import alignments as A

    lst = world["d"] / "list.json"
    lst.write_text("[1, 2]")
    one_line_exit_2(run("extract", world["video"], "-o", world["d"] / "x1", "--alignments", lst, "--size", "128",
                        env=world["env"]), "list.json: top level: expected an object")
    p = _aln_copy(world, "aln_stream", lambda d: [f.__setitem__("matrix", [[1, 0], [0, 1]]) for f in _all_faces(d)])
    for reader in (A.load, A.AlignmentsStore.read):
        with pytest.raises(S.SchemaError, match=r'aln_stream.json: field sources\[".*"\]\.frames\["0"\]\[0\]\.matrix'):
            reader(p)


# ---------------------------------------------------------------- 4. labels, dataset.json, detector config (detect)

def test_labels_are_validated_naming_file_and_field(tmp_path):
    from swap.labels import read_labels

    base = {"format": "veriswap-labels", "version": 1, "frames": [
        {"index": 0, "swapped": True, "faces": [{"face": 0, "track": 0, "box": [1, 2, 3, 4]}], "mask": "masks/000000.png"}]}
    p = tmp_path / "labels.json"
    p.write_text(json.dumps(base))
    assert read_labels(p).swapped_frames == "0"
    for mutate, field in ((lambda d: d.__setitem__("frames", 5), "field frames: expected a list"),
                          (lambda d: d["frames"][0].__setitem__("index", "a"), "field frames[0].index"),
                          (lambda d: d["frames"][0]["faces"][0].__setitem__("box", [1, 2]), "field frames[0].faces[0].box"),
                          (lambda d: d["frames"][0].__setitem__("mask", "../../x.png"), "field frames[0].mask")):
        doc = json.loads(json.dumps(base))
        mutate(doc)
        p.write_text(json.dumps(doc))
        with pytest.raises(S.SchemaError, match=r"labels.json: " + field.replace("[", r"\[").replace("]", r"\]")):
            read_labels(p)


def _dataset(tmp_path, mutate=None) -> Path:
    doc = {"format": "veriswap-detect-dataset", "version": 1, "settings": {},
           "videos": {"v1": {"id": "v1", "path": "/x/a.mp4", "label": 0, "kind": "real", "group": "g1",
                             "frames_total": 4, "split": "train"}},
           "samples": [{"file": "crops/v1/000000_0.png", "video": "v1", "frame": 0, "face": 0, "track": 0, "label": 0,
                        "split": "train"}]}
    from detect.dataset import FORMAT, VERSION
    doc["format"], doc["version"] = FORMAT, VERSION
    if mutate:
        mutate(doc)
    d = tmp_path / "ds"
    d.mkdir(exist_ok=True)
    (d / "dataset.json").write_text(json.dumps(doc))
    return d


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.__setitem__("videos", []), "field videos: expected an object"),
    (lambda d: d["samples"][0].__setitem__("label", "1"), "field samples[0].label: expected an integer"),
    (lambda d: d.__setitem__("samples", "x"), "field samples: expected a list"),
    (lambda d: d["samples"][0].__setitem__("file", "../../etc/passwd"), "field samples[0].file"),
    (lambda d: d["samples"][0].__setitem__("video", "nope"), "field samples[0].video"),
])
def test_detect_dataset_json_is_validated_naming_file_and_field(tmp_path, mutate, field):
    from detect.dataset import load

    assert len(load(_dataset(tmp_path)).samples) == 1
    with pytest.raises(S.SchemaError, match="ds/dataset.json: " + field.replace("[", r"\[").replace("]", r"\]")):
        load(_dataset(tmp_path, mutate))


def test_detect_train_and_eval_on_a_wrongly_typed_dataset_exit_2(tmp_path):
    ds = _dataset(tmp_path, lambda d: d["samples"][0].__setitem__("label", "1"))
    one_line_exit_2(run("detect", "train", ds, "-o", tmp_path / "det", "--no-pretrained",
                        env={"VERISWAP_HOME": str(tmp_path / "h")}), "ds/dataset.json: field samples[0].label")
    assert not (tmp_path / "det" / "model.safetensors").exists()


def test_detector_config_is_validated(tmp_path):
    from detect.model import DetectorConfig

    DetectorConfig(arch="resnet18", input_size=64, mean=[0.5] * 3, std=[0.25] * 3).save(tmp_path)
    assert DetectorConfig.load(tmp_path).input_size == 64
    doc = json.loads((tmp_path / "config.json").read_text())
    doc["mean"] = [1, 2]
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(S.SchemaError, match="config.json: field mean: expected 3 numbers, got 2 numbers"):
        DetectorConfig.load(tmp_path)


def test_a_pickled_weights_file_is_refused_without_torch_warnings(tmp_path, capfd):
    """`detect train --weights evil.pt` printed torch's two-line 'Detected pickle protocol' UserWarning first."""
    import pickle

    from detect.backbone import _from_file

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Evil()))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match="evil.pt refused"):
            _from_file("resnet18", evil, 1)
    assert not [w for w in seen if "pickle" in str(w.message)], [str(w.message) for w in seen]
    assert "UserWarning" not in capfd.readouterr().err
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------- the helper itself

def test_schema_messages_name_the_field_path():
    spec = S.Obj({"a": S.Map(S.List_(S.Obj({"m": S.Array((2, 3))})))})
    with pytest.raises(S.SchemaError) as e:
        S.validate({"a": {"/v/x.mp4": [{"m": [[1, 2, 3], [4, 5, "6"]]}]}}, spec, "f.json")
    assert str(e.value) == "f.json: field a[\"/v/x.mp4\"][0].m: expected a 2x3 array of numbers, got '6' (a string) at [1][2]"
    for value, msg in (([[1, 2, 3]], "got 1x3"), ([[1, 2, 3], [1, 2]], "rows of unequal length"),
                       ([[1, 2, 3], [1, 2, float("nan")]], "NaN"), ([[True, False, True]] * 2, "expected a 2x3")):
        with pytest.raises(S.SchemaError, match=msg):
            S.validate({"m": value}, S.Obj({"m": S.Array((2, 3))}), "f")
    with pytest.raises(S.SchemaError, match="f: field n: expected an integer, got true"):
        S.validate({"n": True}, S.Obj({"n": S.Int()}), "f")
    with pytest.raises(S.SchemaError, match="f: field n: must be between 0 and 1, got 5"):
        S.validate({"n": 5}, S.Obj({"n": S.Num(0, 1)}), "f")
    with pytest.raises(S.SchemaError, match="f: field n: missing"):
        S.validate({}, S.Obj({"n": S.Num()}), "f")
    assert issubclass(S.SchemaError, InputError) and S.SchemaError("x").exit_code == 2


# ---------------------------------------------------------------- 3. a killed save's temp files

def test_train_removes_a_killed_saves_temps_and_veriswap_model_names_them(world):
    m = world["d"] / "model_temps"
    shutil.copytree(world["model"], m, ignore=shutil.ignore_patterns(".veriswap.lock"))
    # what 13 kill -9 trials left (4.8 GB in all): half-written payloads beside the checkpoint
    for name in ("model.safetensors", "optimizer.safetensors", "state.json"):
        (m / f".{name}.k1ll3d_.tmp").write_bytes(b"\0" * 50_000)
    (m / ".model.safetensors.bak.linktmp").write_bytes(b"x")
    (m / "snapshots" / ".00000008.tmp").mkdir(parents=True)
    (m / "snapshots" / ".00000008.tmp" / "model.safetensors").write_bytes(b"x")
    (m / ".notes.tmp").write_text("a user's own file: not ours")
    r = run("model", m, env=world["env"])
    assert r.returncode == 0, r.stderr
    assert "temp files 5 (0.2 MB" in r.stdout and "the next `veriswap train` on this folder removes them" in r.stdout
    info = json.loads(run("model", m, "--json", env=world["env"]).stdout)
    assert ".optimizer.safetensors.k1ll3d_.tmp" in info["stale_temps"] and info["in_use_by"] is None
    # while a writer holds the folder its temps are a save in progress, and said so
    code = ("import sys, time\nfrom swap.lock import folder_lock\n"
            f"with folder_lock({str(m)!r}, 'veriswap train'):\n    print('held', flush=True)\n    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert "being written by veriswap train (pid" in run("model", m, env=world["env"]).stdout
    finally:
        holder.kill()
        holder.wait()
    r = run(*_train_args(world, world["fa"], m, iterations=3), env=world["env"])
    assert r.returncode == 0, r.stderr
    assert "removed 5 temp file(s)" in r.stdout
    left = sorted(p.name for p in m.rglob(".*") if p.name != ".veriswap.lock")
    assert left == [".notes.tmp"], left
    assert "temp files" not in run("model", m, env=world["env"]).stdout


def test_a_real_kill_during_a_save_leaves_temps_that_the_next_run_removes(world, tmp_path):
    """kill -9 at the moment a save's temp file exists (the pause hook of checkpoint._replace), then train on."""
    from swap.models import checkpoint as mio

    m = tmp_path / "m"
    code = ("import os, sys, time\nfrom swap.models import checkpoint as mio\nfrom swap.train import TrainConfig, train\n"
            "orig = mio._replace\n"
            "def slow(a, b):\n    print('saving', flush=True)\n    time.sleep(30)\n    orig(a, b)\n"
            "mio._replace = slow\n"
            f"train(TrainConfig(faces_a={str(world['fa'])!r}, faces_b={str(world['fb'])!r}, model_dir={str(m)!r}, "
            f"model='hq', model_options={TINY!r}, iterations=5, batch_size=2, save_every=1, preview_every=0, "
            "progress=False, identity_check=False))\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert p.stdout.readline().strip() == "saving"
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    assert mio.stale_temps(m), sorted(x.name for x in m.iterdir())   # the first save died with its payload staged
    r = run(*_train_args(world, world["fa"], m), env=world["env"])
    assert r.returncode == 0, r.stderr
    assert "temp file(s)" in r.stdout and mio.stale_temps(m) == []
    assert mio.find_checkpoint(m) is not None


# ---------------------------------------------------------------- 6. extract resumes within a chunk

def test_resume_chunk_follows_the_parts_of_a_chunk():
    from swap.extract.chunks import resume_chunk

    done = {0: (40, 40), 40: (90, 50), 90: (None, 30), 200: (300, 100), 500: (600, 1)}
    assert resume_chunk(done, 0, None) == ([0, 40, 90], None)       # the whole chunk, in three parts
    assert resume_chunk(done, 0, 150) == ([0, 40], 90)              # a part of another plan: resume at 90
    assert resume_chunk(done, 200, 400) == ([200], 300)             # done up to frame 300
    assert resume_chunk(done, 400, 500) == ([], 400)                # nothing yet
    assert resume_chunk(done, 500, 600) == ([500], None)


def test_a_kill_inside_the_only_chunk_loses_seconds_not_the_chunk(tmp_path):
    """One worker, one chunk (120 frames): before, a kill anywhere in it redid all of it."""
    import re

    from swap import alignments as A
    from swap.samples import make_face_video

    video = make_face_video(tmp_path / "v.mp4", "grace_hopper", frames=120, size=(320, 240), audio=False)
    out = tmp_path / "faces"
    env = {k: v for k, v in os.environ.items() if k != "VERISWAP_DEBUG"} | {"VERISWAP_EXTRACT_PART_SECONDS": "0.5"}
    p = subprocess.Popen([sys.executable, "-m", "veriswap.cli", "extract", str(video), "-o", str(out), "-j", "1",
                          "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / ".parts").glob("*/*.json"))) < 2 and p.poll() is None:
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    parts = list((out / ".parts").glob("*/*.json"))
    assert len(parts) >= 2, "the worker recorded no part within its chunk"
    r = run("extract", video, "-o", out, "-j", "1", "--no-progress", env={"VERISWAP_EXTRACT_PART_SECONDS": "0.5"})
    assert r.returncode == 0, r.stderr
    resumed = int(re.search(r"\((\d+) already done\)", r.stdout).group(1))
    assert 0 < resumed < 120
    src = A.load(out / "alignments.json").source_for(video)
    assert src.complete and sorted(src.frames) == list(range(120))
    assert len(list(out.glob("*.png"))) == sum(len(f) for f in src.frames.values())
    assert not list(out.glob(".*.tmp")) and not (out / ".parts").exists()

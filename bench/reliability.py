#!/usr/bin/env python
"""Reliability you can quote (issue 16): a hostile user's session as a benchmark, seeded and bounded in time.

    python bench/reliability.py            # about 10-15 minutes on 2 CPU cores
    python bench/reliability.py --quick    # under 3 minutes: fewer cases, mutations and kills

Three parts, one table at the end:

1. **Bad inputs per command**: a table of cases (missing files, files of the wrong kind, wrongly typed JSON,
   out-of-range options, a pickled weights file, no terminal for a passphrase prompt ...), each run as
   `python -m veriswap.cli ...` with a timeout. A case is *clean* when it exits with the documented code and,
   for exit 2, prints one `error:` line (naming the file where the case says so) and no traceback.
2. **Mutations per file format**: M seeded mutations of each of tag file, faces.json, alignments, labels,
   dataset.json, model folder, signed MP4 and signed image, each handed to the library's own loader (and, where
   it accepts the file, to the code that uses it). For the signed formats a change must never verify silently:
   either it is refused, or (bytes the signature does not cover) reported as a warning. For the unsigned JSON
   formats a mutated file may well still be valid; then it must be used without a crash.
3. **kill -9** during train (half of the kills aimed at a save in progress), convert and extract; then the
   same command again. Measured: whether it finishes, temp files left after the re-run, and the work lost: the
   seconds of work between the last recorded progress (checkpoint, segment, extract part) and the kill,
   against the interval at which that progress is recorded.

Everything runs in a fresh folder (`--work`, default a temp folder) with its own VERISWAP_HOME; the seed
fixes every case, mutation and kill time. Targets (issue 16): 0 tracebacks, 0 hangs, 0 wrong exit codes,
0 mutations of signed bytes accepted, every unsigned-byte change reported as a warning, 0 leftover temp
files, work lost <= one save interval.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRACEBACK = "Traceback (most recent call last)"


# ---- running the CLI --------------------------------------------------------------------------------

@dataclass
class Ran:
    rc: Optional[int]           # None: hung (killed at the timeout)
    out: str
    err: str
    seconds: float


def cli(args: Sequence[Any], cwd: Path, env: Dict[str, str], timeout: float = 90, stdin=subprocess.DEVNULL) -> Ran:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "veriswap.cli", *map(str, args)], cwd=cwd, env=env, stdin=stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return Ran(p.returncode, out, err, time.perf_counter() - t0)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return Ran(None, out, err, time.perf_counter() - t0)


def temps_in(folder: Path) -> List[Path]:
    """Temp files/folders a veriswap writer names `.NAME.xxxx.tmp` (also `.linktmp`, `.old`), anywhere below."""
    if not folder.exists():
        return []
    return [p for p in folder.rglob(".*") if re.search(r"\.(tmp|linktmp|old)$", p.name)]


# ---- the world the cases run in -----------------------------------------------------------------------

class World:
    """Real inputs made once: two face videos, their faces folders, a tiny model, a signed swap with labels,
    keys, a tag file, a signed image, a detect dataset and a (random-init) detector folder."""

    def __init__(self, work: Path, quick: bool):
        self.d = work
        self.quick = quick
        self.env = {k: v for k, v in os.environ.items() if k != "VERISWAP_DEBUG"}
        self.env.update(VERISWAP_HOME=str(work / "home"), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2")

    def build(self) -> None:
        """In this process (one import of torch, not one per step): what the cases and mutations start from."""
        from detect.dataset import DatasetSettings, build_dataset
        from provenance import keys
        from provenance.c2pa_sign import sign_file
        from provenance.tags import load_tag_key, tag_video
        from swap.convert import ConvertSettings, convert
        from swap.extract import ExtractSettings, extract
        from swap.samples import make_face_video, save_photo
        from swap.train import TrainConfig, train

        d = self.d
        t0 = time.perf_counter()
        make_face_video(d / "a.mp4", "astronaut", frames=20, size=(320, 240))
        make_face_video(d / "b.mp4", "grace_hopper", frames=20, size=(320, 240))
        make_face_video(d / "t.mp4", "astronaut", frames=6, size=(320, 240), audio=False)
        (d / "notes.mp4").write_text("this is not a video\n")
        (d / "notes.txt").write_text("not an image\n")
        data = (d / "a.mp4").read_bytes()
        (d / "cut.mp4").write_bytes(data[: len(data) * 3 // 10])
        (d / "empty").mkdir()
        (d / "list.json").write_text("[1, 2]")
        for video, out in (("a.mp4", "fa"), ("b.mp4", "fb"), ("t.mp4", "ft")):
            extract([d / video], d / out, settings=ExtractSettings(size=128), jobs=1)
        ident = keys.generate_identity(d / "keys", name="reliability bench")
        train(TrainConfig(faces_a=str(d / "fa"), faces_b=str(d / "fb"), model_dir=str(d / "model"), model="hq",
                          model_options={"resolution": 64, "ae_dims": 32, "e_dims": 8, "d_dims": 8}, iterations=4,
                          save_every=2, preview_every=4, batch_size=2, identity_check=False, progress=False))
        convert(d / "a.mp4", d / "model", d / "out.mp4", alignments=d / "fa" / "alignments.json",
                settings=ConvertSettings(key_dir=str(d / "keys")))
        tag_video(d / "t.mp4", load_tag_key(d / "keys" / keys.TAG_KEY), out=d / "t.tags")
        save_photo("grace_hopper", d / "photo.jpg")
        sign_file(d / "photo.jpg", d / "photo_signed.jpg", ident)
        build_dataset([d / "a.mp4", d / "b.mp4"], [d / "out.mp4"], d / "ds", settings=DatasetSettings(frames=4))
        self._fake_detector(d / "det")
        self._bad_copies()
        self.setup_s = time.perf_counter() - t0

    tiny_model = ["--model", "hq", "--resolution", "64", "--ae-dims", "32", "--e-dims", "8", "--d-dims", "8"]

    def _fake_detector(self, folder: Path) -> None:
        """A detector folder with random-init weights (what score/eval load), made without training."""
        from safetensors.torch import save_file

        from detect.model import DetectorConfig, create_model, default_input_size, normalization

        m = create_model("resnet18")
        mean, std = normalization(m)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(folder / "model.safetensors"))
        DetectorConfig(arch="resnet18", input_size=default_input_size(m), mean=mean, std=std).save(folder)

    def _bad_copies(self) -> None:
        """The exact inputs issue 16 found failing, and a few more of each kind."""
        d = self.d

        def faces(name: str, mut: Callable[[dict], Any]) -> None:
            dst = d / name
            shutil.copytree(d / "fa", dst, ignore=shutil.ignore_patterns(".veriswap.lock"))
            doc = json.loads((dst / "faces.json").read_text())
            mut(doc)
            (dst / "faces.json").write_text(json.dumps(doc))

        first = lambda doc: next(iter(doc["faces"].values()))   # noqa: E731
        faces("faces_ints", lambda doc: doc.__setitem__("faces", [1, 2, 3]))
        faces("faces_strs", lambda doc: doc["faces"].update({k: "x" for k in doc["faces"]}))
        faces("faces_lm_str", lambda doc: first(doc).__setitem__("landmarks", [["a", "b"]] * 68))
        faces("faces_lm_ragged", lambda doc: first(doc).__setitem__("landmarks", [[1, 2]] * 67 + [[1]]))

        def model(name: str, mut: Callable[[dict], Any]) -> None:
            dst = d / name
            shutil.copytree(d / "model", dst, ignore=shutil.ignore_patterns(".veriswap.lock"))
            doc = json.loads((dst / "config.json").read_text())
            mut(doc)
            (dst / "config.json").write_text(json.dumps(doc))

        model("model_arch_list", lambda c: c.__setitem__("architecture", ["x"]))
        model("model_ids_int", lambda c: c.__setitem__("identities", 5))
        model("model_res_str", lambda c: c.__setitem__("resolution", "a"))
        model("model_args_bad", lambda c: c["model_args"].__setitem__("resolution", 65))
        dmg = d / "model_damaged"
        shutil.copytree(d / "model", dmg, ignore=shutil.ignore_patterns(".veriswap.lock"))
        for name in ("model.safetensors", "model.safetensors.bak"):
            b = bytearray((dmg / name).read_bytes())
            b[len(b) // 2] ^= 0xFF
            (dmg / name).write_bytes(bytes(b))

        aln = json.loads((d / "fa" / "alignments.json").read_text())

        def alignments(name: str, mut: Callable[[dict], Any]) -> None:
            doc = copy.deepcopy(aln)
            mut(doc)
            (d / f"{name}.json").write_text(json.dumps(doc))

        faces_of = lambda doc: [f for s in doc["sources"].values() for fr in s["frames"].values() for f in fr]  # noqa: E731
        alignments("aln_sources_list", lambda doc: doc.__setitem__("sources", []))
        alignments("aln_matrix_2x2", lambda doc: [f.__setitem__("matrix", [[1, 0], [0, 1]]) for f in faces_of(doc)])
        alignments("aln_lm_str", lambda doc: [f.__setitem__("landmarks", [["a", "b"]] * 68) for f in faces_of(doc)])
        alignments("aln_frames_list", lambda doc: [s.__setitem__("frames", [1]) for s in doc["sources"].values()])
        alignments("aln_matrix_singular", lambda doc: [f.__setitem__("matrix", [[0, 0, 1], [0, 0, 1]])
                                                        for f in faces_of(doc)])

        ds = json.loads((d / "ds" / "dataset.json").read_text())

        def dataset(name: str, mut: Callable[[dict], Any]) -> None:
            dst = d / name
            shutil.copytree(d / "ds", dst, ignore=shutil.ignore_patterns(".veriswap.lock"))
            doc = copy.deepcopy(ds)
            mut(doc)
            (dst / "dataset.json").write_text(json.dumps(doc))

        dataset("ds_videos_list", lambda doc: doc.__setitem__("videos", []))
        dataset("ds_label_str", lambda doc: doc["samples"][0].__setitem__("label", "1"))
        dataset("ds_samples_str", lambda doc: doc.__setitem__("samples", "x"))
        dataset("ds_file_outside", lambda doc: doc["samples"][0].__setitem__("file", "../../etc/passwd"))

        lab = json.loads((d / "out.labels" / "labels.json").read_text())
        for name, mut in (("labels_frames_int", lambda doc: doc.__setitem__("frames", 5)),
                          ("labels_box_str", lambda doc: doc["frames"][0]["faces"][0].__setitem__("box", "a"))):
            doc = copy.deepcopy(lab)
            mut(doc)
            (d / name / "v.labels").mkdir(parents=True)           # where convert puts them: OUT.labels/
            (d / name / "v.labels" / "labels.json").write_text(json.dumps(doc))
            shutil.copy(d / "out.mp4", d / name / "v.mp4")

        detm = d / "det_bad"
        shutil.copytree(d / "det", detm)
        cfg = json.loads((detm / "config.json").read_text())
        cfg["mean"] = [1, 2]
        (detm / "config.json").write_text(json.dumps(cfg))

        import pickle

        class Evil:
            def __reduce__(self):
                return (os.system, ("echo PWNED > pwned.txt",))
        (d / "evil.pt").write_bytes(pickle.dumps(Evil()))
        import numpy as np
        import cv2
        cv2.imwrite(str(d / "wide.png"), np.zeros((64, 96, 3), np.uint8))
        (d / "faces_nonsquare").mkdir()
        shutil.copy(d / "wide.png", d / "faces_nonsquare" / "x.png")
        (d / "faces_corrupt").mkdir()
        (d / "faces_corrupt" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)


# ---- part 1: bad inputs per command ---------------------------------------------------------------------

@dataclass
class Case:
    command: str
    label: str
    args: List[str]
    expect: Tuple[int, ...] = (2,)
    names: Optional[str] = None         # the one-line error must mention this (file and/or field)
    quick: bool = False                 # also in --quick
    forbid: Tuple[str, ...] = ()        # text that must not appear on stderr (a warning issue 16 found)


def cases() -> List[Case]:
    T = ["--faces-b", "fb", "--iterations", "1", "--batch-size", "2", "--no-progress", "--no-identity-check",
         *World.tiny_model]
    C = ["--alignments"]
    return [
        # extract
        Case("extract", "missing input", ["extract", "nope.mp4", "-o", "x1"], names="nope.mp4", quick=True),
        Case("extract", "text file named .mp4", ["extract", "notes.mp4", "-o", "x2"], names="notes.mp4"),
        Case("extract", "empty folder as input", ["extract", "empty", "-o", "x3"]),
        Case("extract", "--size -5", ["extract", "a.mp4", "-o", "x4", "--size", "-5"]),
        Case("extract", "--every 0", ["extract", "a.mp4", "-o", "x5", "--every", "0"]),
        Case("extract", "--jobs 0", ["extract", "a.mp4", "-o", "x6", "--jobs", "0"]),
        Case("extract", "output is a file", ["extract", "a.mp4", "-o", "notes.txt"], names="notes.txt"),
        Case("extract", "alignments file is a JSON list", ["extract", "a.mp4", "-o", "x7", *C, "list.json"],
             names="list.json: top level", quick=True),
        Case("extract", "alignments with a 2x2 matrix", ["extract", "a.mp4", "-o", "x8", *C, "aln_matrix_2x2.json"],
             names="matrix"),
        Case("extract", "--ref-face not an image", ["extract", "a.mp4", "-o", "x9", "--ref-face", "notes.txt"]),
        # sort
        Case("sort", "missing folder", ["sort", "nope"], names="nope"),
        Case("sort", "folder without faces", ["sort", "empty"]),
        # train
        Case("train", 'faces.json "faces": [1,2,3]', ["train", *T, "--faces-a", "faces_ints", "-m", "m1"],
             names="faces_ints/faces.json: field faces", quick=True),
        Case("train", "faces.json string entries", ["train", *T, "--faces-a", "faces_strs", "-m", "m2"],
             names="faces_strs/faces.json: field faces["),
        Case("train", "landmarks of strings", ["train", *T, "--faces-a", "faces_lm_str", "-m", "m3"],
             names="landmarks", quick=True),
        Case("train", "ragged landmarks", ["train", *T, "--faces-a", "faces_lm_ragged", "-m", "m4"], names="landmarks"),
        Case("train", 'config.json "architecture": ["x"]', ["train", "--faces-a", "fa", "--faces-b", "fb", "-m",
             "model_arch_list", "--iterations", "9", "--no-progress"], names="model_arch_list/config.json: field architecture",
             quick=True),
        Case("train", 'config.json "identities": 5', ["train", "--faces-a", "fa", "--faces-b", "fb", "-m",
             "model_ids_int", "--iterations", "9", "--no-progress"], names="field identities"),
        Case("train", "missing faces folder", ["train", *T, "--faces-a", "nope", "-m", "m5"], names="nope"),
        Case("train", "non-square crop", ["train", *T, "--faces-a", "faces_nonsquare", "-m", "m6"], names="x.png"),
        Case("train", "corrupt PNG crop", ["train", *T, "--faces-a", "faces_corrupt", "-m", "m7"], names="x.png"),
        Case("train", "--batch-size 0", ["train", *T, "--faces-a", "fa", "-m", "m8", "--batch-size", "0"]),
        Case("train", "--time-limit abc", ["train", *T, "--faces-a", "fa", "-m", "m9", "--time-limit", "abc"]),
        Case("train", "--lr 5", ["train", *T, "--faces-a", "fa", "-m", "m10", "--lr", "5"]),
        # model
        Case("model", "missing folder", ["model", "nope"], names="nope"),
        Case("model", 'config.json "architecture": ["x"]', ["model", "model_arch_list"], names="field architecture",
             quick=True),
        Case("model", 'config.json "identities": 5', ["model", "model_ids_int"], names="field identities", quick=True),
        Case("model", 'config.json "resolution": "a"', ["model", "model_res_str"], names="field resolution"),
        Case("model", "both checkpoints damaged", ["model", "model_damaged"], expect=(1,)),
        Case("model", "empty folder", ["model", "empty"]),
        # convert
        Case("convert", 'alignments "sources": []', ["convert", "a.mp4", "-m", "model", "-o", "c1.mp4", *C,
             "aln_sources_list.json"], names="aln_sources_list.json: field sources", quick=True),
        Case("convert", "alignments with a 2x2 matrix", ["convert", "a.mp4", "-m", "model", "-o", "c2.mp4", *C,
             "aln_matrix_2x2.json"], names="matrix", quick=True),
        Case("convert", "alignments with a singular matrix", ["convert", "a.mp4", "-m", "model", "-o", "c3.mp4", *C,
             "aln_matrix_singular.json"], names="matrix"),
        Case("convert", "alignments landmarks of strings", ["convert", "a.mp4", "-m", "model", "-o", "c4.mp4", *C,
             "aln_lm_str.json"], names="landmarks"),
        Case("convert", "alignments frames as a list", ["convert", "a.mp4", "-m", "model", "-o", "c5.mp4", *C,
             "aln_frames_list.json"], names="frames"),
        Case("convert", "model config with a bad resolution", ["convert", "a.mp4", "-m", "model_args_bad", "-o",
             "c6.mp4", *C, "fa/alignments.json"], names="model_args"),
        Case("convert", "missing model", ["convert", "a.mp4", "-m", "nope", "-o", "c7.mp4"], names="nope"),
        Case("convert", "input not a video", ["convert", "notes.mp4", "-m", "model", "-o", "c8.mp4"], names="notes.mp4"),
        Case("convert", "--direction x", ["convert", "a.mp4", "-m", "model", "-o", "c9.mp4", "--direction", "x"]),
        Case("convert", "--frames a-b", ["convert", "a.mp4", "-m", "model", "-o", "c10.mp4", "--frames", "a-b"]),
        # provenance
        Case("provenance", "keygen --prompt-passphrase without a terminal",
             ["provenance", "keygen", "-o", "k2", "--prompt-passphrase"], quick=True, forbid=("GetPassWarning",)),
        Case("provenance", "sign the first 30% of an MP4", ["provenance", "sign", "cut.mp4", "-k", "keys", "-o",
             "s1.mp4"], quick=True),
        Case("provenance", "sign a missing file", ["provenance", "sign", "nope.mp4", "-k", "keys"], names="nope.mp4"),
        Case("provenance", "verify a text file", ["provenance", "verify", "notes.mp4"], expect=(1, 2)),
        Case("provenance", "tag a text file", ["provenance", "tag", "notes.mp4", "--key", "keys/tag.key"]),
        Case("provenance", "check an unreadable video", ["provenance", "check", "notes.mp4", "--tags", "t.tags",
             "--key", "keys/tag.key"], quick=True),
        Case("provenance", "check with a text file as tags", ["provenance", "check", "t.mp4", "--tags", "notes.txt",
             "--key", "keys/tag.key"]),
        Case("provenance", "tag with a certificate as key", ["provenance", "tag", "t.mp4", "--key", "keys/root.pem"]),
        # detect
        Case("detect", "dataset from a missing video", ["detect", "dataset", "--real", "nope.mp4", "--fake", "out.mp4",
             "-o", "d1"], names="nope.mp4"),
        Case("detect", 'train: dataset.json "videos": []', ["detect", "train", "ds_videos_list", "-o", "d2",
             "--no-pretrained"], names="ds_videos_list/dataset.json: field videos", quick=True),
        Case("detect", "train: a sample's label a string", ["detect", "train", "ds_label_str", "-o", "d3",
             "--no-pretrained"], names="field samples[0].label"),
        Case("detect", "train: a crop path outside the folder", ["detect", "train", "ds_file_outside", "-o", "d4",
             "--no-pretrained"], names="field samples[0].file"),
        Case("detect", "train --weights evil.pt (a pickle)", ["detect", "train", "ds", "-o", "d5", "--weights",
             "evil.pt", "--sbi"], names="evil.pt", quick=True, forbid=("UserWarning", "pickle protocol")),
        Case("detect", "eval: samples a string", ["detect", "eval", "ds_samples_str", "-d", "det"], names="field samples"),
        Case("detect", "eval with a detector config of 2 means", ["detect", "eval", "ds", "-d", "det_bad"],
             names="det_bad/config.json: field mean"),
        Case("detect", "score a text file", ["detect", "score", "notes.mp4", "-d", "det"], names="notes.mp4"),
        Case("detect", "score with a missing detector", ["detect", "score", "a.mp4", "-d", "nope"], names="nope"),
        Case("detect", "dataset from labels with frames: 5", ["detect", "dataset", "--real", "a.mp4", "--fake",
             "labels_frames_int/v.mp4", "-o", "d6"], names="labels.json: field frames"),
        Case("detect", "dataset from labels with a box 'a'", ["detect", "dataset", "--real", "a.mp4", "--fake",
             "labels_box_str/v.mp4", "-o", "d7"], names="].box"),
        # check
        Case("check", "missing file", ["check", "nope.mp4"], names="nope.mp4"),
    ]


@dataclass
class CaseResult:
    case: Case
    ran: Ran
    verdict: str                # clean | traceback | hang | wrong exit | unclear message
    detail: str = ""


def judge(c: Case, r: Ran) -> CaseResult:
    text = r.out + r.err
    if r.rc is None:
        return CaseResult(c, r, "hang", f"no exit after {r.seconds:.0f} s")
    if TRACEBACK in text:
        return CaseResult(c, r, "traceback", r.err.strip().splitlines()[-1][:120] if r.err.strip() else "")
    if r.rc not in c.expect:
        return CaseResult(c, r, "wrong exit", f"exit {r.rc} (want {'/'.join(map(str, c.expect))}): "
                          f"{(r.err.strip().splitlines() or [''])[0][:120]}")
    if r.rc == 2:
        lines = [ln for ln in r.err.strip().splitlines() if ln.strip()]
        usage = any(ln.startswith("Usage:") for ln in lines)      # click's own usage errors: its format
        bad = [f for f in c.forbid if f in r.err]
        if bad:
            return CaseResult(c, r, "unclear message", f"stderr holds {bad[0]!r}")
        if not usage and (len(lines) != 1 or not lines[0].startswith("error:")):
            return CaseResult(c, r, "unclear message", f"{len(lines)} stderr lines: {' | '.join(lines)[:120]}")
        if c.names and c.names not in r.err:
            return CaseResult(c, r, "unclear message", f"does not name {c.names!r}: {lines[0][:120]}")
    return CaseResult(c, r, "clean", (r.err.strip().splitlines() or [""])[0][:140])


def run_cases(w: World, quick: bool, deadline: float, log) -> List[CaseResult]:
    out = []
    todo = [c for c in cases() if c.quick or not quick]
    for c in todo:
        if time.time() > deadline:
            log(f"  (time budget: {len(todo) - len(out)} cases left out)")
            break
        r = judge(c, cli(c.args, w.d, w.env, timeout=60 if quick else 120))
        out.append(r)
        log(f"  {r.verdict:<15} {c.command:<10} {c.label:<45} {r.detail[:110]}")
    if (w.d / "pwned.txt").exists():
        out.append(CaseResult(Case("detect", "evil.pt executed code", []), Ran(0, "", "", 0), "traceback",
                              "the pickle in evil.pt ran"))
    return out


# ---- part 2: mutations per file format ------------------------------------------------------------------

class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def paths_of(doc: Any, path: Tuple = ()) -> List[Tuple]:
    """Every value's path in a JSON document (containers and leaves)."""
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths_of(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths_of(v, path + (i,))
    return out


REPLACEMENTS = ["a", "", [1, 2, 3], [], {}, None, True, -1, 0, 10 ** 12, 1e308, -0.5, [[1, 0], [0, 1]],
                {"x": 1}, [["a", "b"]] * 68, 3.5]


def mutate_json(data: bytes, rng: random.Random) -> bytes:
    """One structural mutation of a JSON document (a value's type/range changed, a key dropped, a list item
    dropped or repeated) at a depth drawn evenly, or a byte-level one (flip, truncate)."""
    kind = rng.random()
    if kind < 0.15:
        b = bytearray(data)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind < 0.2:
        return data[: rng.randrange(1, len(data))]
    doc = json.loads(data)
    paths = [p for p in paths_of(doc) if p]
    depth = rng.choice(sorted({len(p) for p in paths}))
    path = rng.choice([p for p in paths if len(p) == depth])
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    op = rng.random()
    if op < 0.7:
        parent[key] = copy.deepcopy(rng.choice(REPLACEMENTS))
    elif op < 0.85:
        del parent[key]
    elif isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    else:
        parent[key] = [parent[key]]
    return json.dumps(doc).encode()


def mutate_bytes(data: bytes, rng: random.Random, lo: int = 0, hi: Optional[int] = None) -> Tuple[bytes, int]:
    b = bytearray(data)
    i = rng.randrange(lo, hi if hi is not None else len(b))
    b[i] ^= rng.randrange(1, 256)
    return bytes(b), i


@dataclass
class FormatResult:
    name: str
    mutations: int = 0
    rejected: int = 0           # a clean error (InputError / ProvenanceError, exit 2)
    accepted: int = 0           # still valid after the mutation, and used without a crash
    warned: int = 0             # signed formats: trusted, with a warning naming the unsigned change
    silent: int = 0             # signed formats: a changed file trusted with nothing said (target 0)
    tracebacks: int = 0
    hangs: int = 0
    notes: List[str] = field(default_factory=list)
    signed: bool = False


def run_mutations(w: World, m: int, seed: int, deadline: float, log) -> List[FormatResult]:
    from provenance.errors import VeriswapError

    rng = random.Random(seed)
    d = w.d / "mut"
    d.mkdir(exist_ok=True)
    results = []
    signal.signal(signal.SIGALRM, _alarm)

    def trial(res: FormatResult, fn: Callable[[], Optional[str]], limit: int = 30) -> None:
        """fn() -> None (accepted), "warned", "silent"; raises VeriswapError (rejected)."""
        res.mutations += 1
        signal.alarm(limit)
        try:
            out = fn()
            if out == "silent":
                res.silent += 1
            elif out == "warned":
                res.warned += 1
            elif out == "rejected":
                res.rejected += 1
            else:
                res.accepted += 1
        except VeriswapError:
            res.rejected += 1
        except Timeout:
            res.hangs += 1
        except Exception as e:  # noqa: BLE001 - what the benchmark counts
            res.tracebacks += 1
            if len(res.notes) < 3:
                res.notes.append(f"{type(e).__name__}: {str(e)[:100]}")
        finally:
            signal.alarm(0)

    for fmt in FORMATS:
        if time.time() > deadline:
            log(f"  (time budget: {fmt[0]} and later formats left out)")
            break
        name, fn = fmt
        res = FormatResult(name)
        t0 = time.perf_counter()
        fn(w, d, m, rng, res, trial)
        results.append(res)
        log(f"  {name:<13} {res.mutations:>4} mutations: {res.rejected} rejected, {res.accepted} accepted"
            + (f", {res.warned} warned, {res.silent} SILENT" if res.signed else "")
            + f", {res.tracebacks} tracebacks, {res.hangs} hangs ({time.perf_counter() - t0:.0f} s)"
            + (f"  e.g. {res.notes[0]}" if res.notes else ""))
    return results


def fmt_tags(w, d, m, rng, res, trial):
    from provenance.tags import check_video, load_tag_key

    res.signed = True
    key = load_tag_key(w.d / "keys" / "tag.key")
    original = (w.d / "t.tags").read_bytes()
    sem = [json.loads(x) for x in original.splitlines()]
    p = d / "m.tags"
    for _ in range(m):
        data = mutate_json_lines(original, rng)
        p.write_bytes(data)

        def fn():
            r = check_video(w.d / "t.mp4", p, key)
            if not r.ok:
                return "rejected"               # a report naming the bad frames (exit 1)
            try:
                same = [json.loads(x) for x in data.splitlines()] == sem
            except ValueError:
                same = False
            return None if same else "silent"   # accepted: only if it states the very same frames
        trial(res, fn)


def mutate_json_lines(data: bytes, rng: random.Random) -> bytes:
    """A tag file mutation: a byte flipped, a hex digit changed (stays well-formed: the MAC must catch it),
    a line dropped, repeated or swapped, or the file truncated."""
    lines = data.split(b"\n")
    op = rng.random()
    b = bytearray(data)
    if op < 0.3:
        b[rng.randrange(len(b))] ^= rng.randrange(1, 256)
        return bytes(b)
    if op < 0.6:
        hexpos = [i for i, c in enumerate(b) if chr(c) in "0123456789abcdef"]
        i = rng.choice(hexpos)
        b[i] = ord(rng.choice("0123456789abcdef".replace(chr(b[i]), "")))
        return bytes(b)
    if op < 0.9:
        j, k = rng.randrange(len(lines)), rng.randrange(len(lines))
        which = rng.choice(["drop", "dup", "swap"])
        if which == "drop":
            del lines[j]
        elif which == "dup":
            lines.insert(j, lines[j])
        else:
            lines[j], lines[k] = lines[k], lines[j]
        return b"\n".join(lines)
    return data[: rng.randrange(1, len(data))]


def _json_trials(original: bytes, path: Path, m: int, rng, res, trial, fn: Callable[[int], None],
                 limit: int = 30) -> None:
    """`m` trials: `path` holds a fresh mutation of `original`, then `fn(k)` reads it as the tools do."""
    for k in range(m):
        path.write_bytes(mutate_json(original, rng))
        trial(res, lambda: fn(k), limit=limit)


def fmt_faces_json(w, d, m, rng, res, trial):
    from swap.train.data import load_faces

    mini = d / "faces"
    mini.mkdir(exist_ok=True)
    doc = json.loads((w.d / "fa" / "faces.json").read_text())
    names = sorted(doc["faces"])[:3]
    for n in names:
        shutil.copy(w.d / "fa" / n, mini / n)
    doc["faces"] = {n: doc["faces"][n] for n in names}
    _json_trials(json.dumps(doc).encode(), mini / "faces.json", m, rng, res, trial,
                 lambda k: load_faces(mini, 64) and None)


def fmt_alignments(w, d, m, rng, res, trial):
    from swap import alignments as A
    from swap.convert import ConvertSettings, convert

    p = d / "m_alignments.json"

    def fn(k):
        A.load(p)
        with A.AlignmentsStore.read(p):
            pass
        # accepted: convert uses it (the OpenCV assertion of issue 16 came from here)
        convert(w.d / "t.mp4", w.d / "model", d / f"conv{k}.mp4", alignments=p,
                settings=ConvertSettings(sign=False, watermark=False))
    _json_trials((w.d / "ft" / "alignments.json").read_bytes(), p, m, rng, res, trial, fn, limit=60)


def fmt_labels(w, d, m, rng, res, trial):
    from swap.labels import read_labels

    p = d / "labels.json"

    def fn(k):
        lab = read_labels(p)
        lab.swapped_frames, lab.model_sha256, lab.to_dict()     # what detect and check read of it
    _json_trials((w.d / "out.labels" / "labels.json").read_bytes(), p, m, rng, res, trial, fn)


def fmt_dataset(w, d, m, rng, res, trial):
    from detect.dataset import load

    p = d / "dataset.json"

    def fn(k):
        ds = load(p)
        ds.counts(), ds.split("train")
    _json_trials((w.d / "ds" / "dataset.json").read_bytes(), p, m, rng, res, trial, fn)


def fmt_model(w, d, m, rng, res, trial):
    from swap.models.checkpoint import load_model
    from swap.models.inspect import inspect_model

    src = w.d / "model"
    folder = d / "model"
    for _ in range(m):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(src, folder, ignore=shutil.ignore_patterns(".veriswap.lock"))
        target = rng.choice(["config.json", "state.json", "state.json.bak", "model.safetensors",
                             "optimizer.safetensors", "model.safetensors.bak"])
        data = (folder / target).read_bytes()
        if target.endswith((".json", ".json.bak")):
            data = mutate_json(data, rng)
        else:
            data = mutate_bytes(data, rng)[0] if rng.random() < 0.8 else data[: rng.randrange(1, len(data))]
        (folder / target).write_bytes(data)

        def fn():
            inspect_model(folder)
            load_model(folder)
        trial(res, fn)


def _signed_trials(w, d, m, rng, res, trial, path: Path, suffix: str):
    from provenance.c2pa_verify import verify_file

    res.signed = True
    anchor = w.d / "keys" / "root.pem"
    data = path.read_bytes()
    p = d / f"m{suffix}"
    for k in range(m):
        # evenly spread positions (the prober's sweep), each jittered by the seed
        lo, hi = k * len(data) // m, max(k * len(data) // m + 1, (k + 1) * len(data) // m)
        mutated, at = mutate_bytes(data, rng, lo, hi)
        p.write_bytes(mutated)

        def fn():
            r = verify_file(p, [anchor])
            if r.state != "trusted":
                return "rejected"
            return "warned" if r.warnings else "silent"
        trial(res, fn)
        if res.silent and len(res.notes) < 3 and not any(n.startswith("silent") for n in res.notes[-1:]):
            res.notes.append(f"silent at byte {at}")


def fmt_signed_mp4(w, d, m, rng, res, trial):
    _signed_trials(w, d, m, rng, res, trial, w.d / "out.mp4", ".mp4")


def fmt_signed_image(w, d, m, rng, res, trial):
    _signed_trials(w, d, m, rng, res, trial, w.d / "photo_signed.jpg", ".jpg")


FORMATS = [("tag file", fmt_tags), ("faces.json", fmt_faces_json), ("alignments", fmt_alignments),
           ("labels", fmt_labels), ("dataset.json", fmt_dataset), ("model folder", fmt_model),
           ("signed MP4", fmt_signed_mp4), ("signed image", fmt_signed_image)]


# ---- part 3: kill -9 ------------------------------------------------------------------------------------

@dataclass
class KillResult:
    name: str
    trials: int = 0
    finished: int = 0           # the re-run completed (exit 0) with a sound result
    tracebacks: int = 0
    hangs: int = 0
    temps_after_kill: int = 0   # temp files the kills left (informational: the re-run must remove them)
    leftover_temps: int = 0     # temp files still there after the re-run (target 0)
    lost_s: List[float] = field(default_factory=list)
    interval_s: float = 0.0     # how often progress is recorded (the save interval)
    notes: List[str] = field(default_factory=list)


def _spawn(w: World, args: Sequence[Any], extra_env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "veriswap.cli", *map(str, args)], cwd=w.d,
                            env=w.env | (extra_env or {}), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _kill(p: subprocess.Popen) -> float:
    t = time.time()
    os.killpg(p.pid, signal.SIGKILL)      # the process group: extract's workers too, like a power cut
    p.wait()
    return t


def _rerun(w: World, res: KillResult, args: Sequence[Any], ok: Callable[[], bool], folder: Path) -> None:
    r = cli(args, w.d, w.env, timeout=300)
    if r.rc is None:
        res.hangs += 1
    elif TRACEBACK in r.err:
        res.tracebacks += 1
        res.notes.append(r.err.strip().splitlines()[-1][:100])
    elif r.rc == 0 and ok():
        res.finished += 1
    else:
        res.notes.append(f"re-run exit {r.rc}: {(r.err.strip().splitlines() or [''])[-1][:100]}")
    res.leftover_temps += len(temps_in(folder))


def kills_train(w: World, k: int, rng: random.Random, deadline: float, log) -> KillResult:
    """Train a model big enough that a save takes a moment, saving every 2 iterations; kill -9 at a random
    moment after the first save, or (every other trial) the instant a save's temp file appears; then train on.
    The save interval is measured from the run's own checkpoint (seconds per iteration x 2)."""
    from swap.models import checkpoint as mio

    res = KillResult("train saves")
    every = 2
    base = ["train", "--faces-a", "fa", "--faces-b", "fb", "--model", "hq", "--resolution", "64", "--e-dims", "32",
            "--ae-dims", "128", "--d-dims", "32", "--batch-size", "2", "--save-every", str(every),
            "--preview-every", "1000", "--no-progress", "--no-identity-check"]

    def interval(folder: Path) -> Optional[float]:
        try:
            st = json.loads((folder / "state.json").read_text())
            return float(st["elapsed"]) / max(1, int(st["iteration"])) * every
        except (OSError, ValueError, KeyError):
            return None

    for trial in range(k):
        if time.time() > deadline:
            break
        folder = w.d / f"kill_train_{trial}"
        res.trials += 1
        p = _spawn(w, base + ["-m", folder, "--iterations", "1000"])
        at_save = trial % 2 == 1
        t_start = time.time()
        while time.time() - t_start < 240 and interval(folder) is None and p.poll() is None:
            time.sleep(0.02)
        est = max(interval(folder) or 5.0, res.interval_s)
        if at_save:
            until = time.time() + 3 * est + 5
            while time.time() < until and not list(folder.glob(".*.tmp")):
                time.sleep(0.002)
        else:
            time.sleep(rng.uniform(0, 1.5 * est))
        t_kill = _kill(p)
        n_temps = len(temps_in(folder))
        res.temps_after_kill += n_temps
        ck = mio.find_checkpoint(folder)
        saved_at = (folder / ("state.json" + (mio.BAK if ck and ck["backup"] else ""))).stat().st_mtime if ck else t_start
        res.lost_s.append(round(max(0.0, t_kill - saved_at), 2))
        res.interval_s = max(res.interval_s, round(interval(folder) or est, 2))
        it = ck["state"]["iteration"] if ck else 0
        _rerun(w, res, base + ["-m", folder, "--iterations", str(it + 1)],
               lambda: mio.find_checkpoint(folder) is not None, folder)
        log(f"  train kill {trial + 1}/{k} ({'mid-save' if at_save else 'random'}): checkpoint at iteration {it}, "
            f"work lost {res.lost_s[-1]:.1f} s (saves every {res.interval_s:.1f} s), {n_temps} temp file(s) after "
            f"the kill, {len(temps_in(folder))} after the re-run")
    return res


def kills_convert(w: World, k: int, rng: random.Random, deadline: float, log, frames: int) -> KillResult:
    """Convert a clip (one segment); kill -9 at a random moment; run the same command again. Work lost = the
    seconds since the last finished segment (or the start); the interval = one segment, timed by the re-run."""
    from provenance.c2pa_verify import verify_file
    from swap.extract import ExtractSettings, extract
    from swap.samples import make_face_video

    res = KillResult("convert")
    video = w.d / "long_a.mp4"
    make_face_video(video, "astronaut", frames=frames, size=(320, 240))
    extract([video], w.d / "flong", settings=ExtractSettings(size=128), jobs=2)
    args = lambda out: ["convert", video, "-m", "model", "-o", out, "--alignments", "flong/alignments.json",  # noqa: E731
                        "--key", "keys", "--no-progress"]
    est = frames / 12
    for trial in range(k):
        if time.time() > deadline:
            break
        out = w.d / f"kill_convert_{trial}" / "out.mp4"
        out.parent.mkdir(exist_ok=True)
        res.trials += 1
        p = _spawn(w, args(out))
        t_start = time.time()
        time.sleep(rng.uniform(0.3, 0.9) * est)
        t_kill = _kill(p)
        n_temps = len(temps_in(out.parent))
        res.temps_after_kill += n_temps
        segs = sorted(out.parent.glob(f".{out.name}.parts/seg_*.json"))
        res.lost_s.append(round(t_kill - max([x.stat().st_mtime for x in segs], default=t_start), 2))
        t0 = time.time()
        _rerun(w, res, args(out), lambda: verify_file(out, [w.d / "keys" / "root.pem"]).state == "trusted",
               out.parent)
        est = time.time() - t0
        res.interval_s = max(res.interval_s, round(est, 1))
        log(f"  convert kill {trial + 1}/{k}: work lost {res.lost_s[-1]:.1f} s (the whole clip, one segment, "
            f"takes {est:.1f} s), {n_temps} temp file(s) after the kill, {len(temps_in(out.parent))} after the re-run")
    return res


def kills_extract(w: World, k: int, rng: random.Random, deadline: float, log, part_s: float, frames: int) -> KillResult:
    """Extract a clip with 2 workers; kill -9 when a random share (20-80%) of its crops is written; run it again.
    Work lost = crops written before the kill that the re-run did not count as done, at the speed of the killed
    run (crops per second since its first crop)."""
    from swap.samples import make_face_video

    res = KillResult("extract")
    video = w.d / "long_g.mp4"
    make_face_video(video, "grace_hopper", frames=frames, size=(480, 360))
    env = {"VERISWAP_EXTRACT_PART_SECONDS": str(part_s)}
    res.interval_s = part_s
    for trial in range(k):
        if time.time() > deadline:
            break
        out = w.d / f"kill_extract_{trial}"
        res.trials += 1
        p = _spawn(w, ["extract", video, "-o", out, "-j", "2", "--no-progress"], env)
        target = int(rng.uniform(0.2, 0.8) * frames)
        t_first = None
        t_end = time.time() + 300
        while time.time() < t_end and p.poll() is None:
            n = len(list(out.glob("*.png"))) if out.is_dir() else 0
            if n and t_first is None:
                t_first = time.time()
            if n >= target:
                break
            time.sleep(0.05)
        t_kill = _kill(p)
        n_temps = len(temps_in(out))
        res.temps_after_kill += n_temps
        crops = len(list(out.glob("*.png")))
        fps = crops / max(t_kill - (t_first or t_kill), 0.1)
        r = cli(["extract", video, "-o", out, "-j", "2", "--no-progress"], w.d, w.env | env, timeout=600)
        m = re.search(r"\((\d+) already done\)", r.out)
        resumed = int(m.group(1)) if m else 0
        # frames lost / (frames per second of both workers) = wall seconds of work lost
        res.lost_s.append(round(max(0, crops - resumed) / max(fps, 0.1), 2))
        if r.rc is None:
            res.hangs += 1
        elif TRACEBACK in r.err:
            res.tracebacks += 1
        elif r.rc == 0 and len(list(out.glob("*.png"))) >= frames - 5:
            res.finished += 1
        else:
            res.notes.append(f"re-run exit {r.rc}: {r.err.strip()[-100:]}")
        res.leftover_temps += len(temps_in(out))
        log(f"  extract kill {trial + 1}/{k}: {crops} crops written, {resumed} frames resumed, work lost "
            f"{res.lost_s[-1]:.1f} s (parts every {part_s:g} s per worker, {fps:.1f} fps), {n_temps} temp file(s) "
            f"after the kill, {len(temps_in(out))} after the re-run")
    return res


# ---- the table ------------------------------------------------------------------------------------------

def table(case_res: List[CaseResult], fmts: List[FormatResult], kills: List[KillResult], seconds: float,
          args) -> str:
    lines = [f"veriswap reliability (issue 16), seed {args.seed}{', --quick' if args.quick else ''}: "
             f"{seconds / 60:.1f} min on {os.cpu_count()} CPU cores",
             "",
             "bad inputs per command      cases  clean  tracebacks  hangs  wrong exit  unclear msg"]
    by = {}
    for r in case_res:
        by.setdefault(r.case.command, []).append(r)
    tot = {"cases": 0, "clean": 0, "traceback": 0, "hang": 0, "wrong exit": 0, "unclear message": 0}
    for cmd, rs in by.items():
        n = {v: sum(r.verdict == v for r in rs) for v in ("clean", "traceback", "hang", "wrong exit", "unclear message")}
        lines.append(f"  {cmd:<25} {len(rs):>5}  {n['clean']:>5}  {n['traceback']:>10}  {n['hang']:>5}  "
                     f"{n['wrong exit']:>10}  {n['unclear message']:>11}")
        tot["cases"] += len(rs)
        for v in n:
            tot[v] += n[v]
    lines.append(f"  {'all':<25} {tot['cases']:>5}  {tot['clean']:>5}  {tot['traceback']:>10}  {tot['hang']:>5}  "
                 f"{tot['wrong exit']:>10}  {tot['unclear message']:>11}")
    lines += ["", "mutations per format    mutations  rejected  accepted  tracebacks  hangs  signed: warned  "
              "accepted silently"]
    for f in fmts:
        sig = f"{f.warned:>14}  {f.silent:>17}" if f.signed else f"{'-':>14}  {'-':>17}"
        lines.append(f"  {f.name:<21} {f.mutations:>9}  {f.rejected:>8}  {f.accepted:>8}  {f.tracebacks:>10}  "
                     f"{f.hangs:>5}  {sig}")
    lines += ["", "kill -9                 trials  re-run ok  tracebacks  hangs  temps after kill  "
              "leftover temps  work lost max (median)  save interval"]
    for k in kills:
        lost = (f"{max(k.lost_s):.1f} s ({sorted(k.lost_s)[len(k.lost_s) // 2]:.1f} s)" if k.lost_s else "-")
        lines.append(f"  {k.name:<21} {k.trials:>6}  {k.finished:>9}  {k.tracebacks:>10}  {k.hangs:>5}  "
                     f"{k.temps_after_kill:>16}  {k.leftover_temps:>14}  {lost:>22}  {k.interval_s:>11.1f} s")
    # the targets
    tb = tot["traceback"] + sum(f.tracebacks for f in fmts) + sum(k.tracebacks for k in kills)
    hangs = tot["hang"] + sum(f.hangs for f in fmts) + sum(k.hangs for k in kills)
    silent = sum(f.silent for f in fmts if f.signed)
    warned = sum(f.warned for f in fmts if f.signed)
    left = sum(k.leftover_temps for k in kills)
    # lost <= the interval, give or take the step in flight and the save itself (2 s)
    over = [k.name for k in kills if k.lost_s and max(k.lost_s) > k.interval_s + 2.0]
    ok = lambda b: "PASS" if b else "MISS"     # noqa: E731
    lines += ["", "targets",
              f"  tracebacks 0: {tb} {ok(tb == 0)};  hangs 0: {hangs} {ok(hangs == 0)};  wrong exit codes / unclear "
              f"messages 0: {tot['wrong exit']} / {tot['unclear message']} "
              f"{ok(tot['wrong exit'] + tot['unclear message'] == 0)}",
              f"  changed signed files trusted with nothing said 0: {silent} {ok(silent == 0)} "
              f"(unsigned-byte changes reported as warnings: {warned})",
              f"  leftover temp files after the re-run 0: {left} {ok(left == 0)};  work lost <= one save interval: "
              + (f"over in {', '.join(over)} MISS" if over else "PASS")]
    notes = [f"  {r.case.command} / {r.case.label}: {r.verdict}: {r.detail}" for r in case_res if r.verdict != "clean"]
    notes += [f"  {f.name}: {n}" for f in fmts for n in f.notes]
    notes += [f"  {k.name}: {n}" for k in kills for n in k.notes[:3]]
    if notes:
        lines += ["", "details"] + notes
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="under 3 minutes: the issue's cases, 6 mutations per "
                    "format, 1 kill each")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--mutations", type=int, help="per format (default 40, --quick 6)")
    ap.add_argument("--kills", type=int, help="per command (default 4, --quick 1)")
    ap.add_argument("--budget", type=float, help="minutes (default 14, --quick 2.8): parts are trimmed to fit")
    ap.add_argument("--work", type=Path, help="work folder (default: a new temp folder, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    m = args.mutations if args.mutations is not None else (6 if args.quick else 40)
    k = args.kills if args.kills is not None else (1 if args.quick else 4)
    budget = 60 * (args.budget if args.budget is not None else (2.8 if args.quick else 14))
    t0 = time.time()
    work = args.work or Path(tempfile.mkdtemp(prefix="veriswap_reliability_"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--work {work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    os.environ["VERISWAP_HOME"] = str(work / "home")     # this process signs too: keep the user's home out of it
    log = lambda s: print(s, flush=True)    # noqa: E731
    try:
        w = World(work, args.quick)
        log(f"setting up in {work} ...")
        w.build()
        log(f"  setup {w.setup_s:.0f} s")
        rng = random.Random(args.seed)
        # the budget after setup: bad inputs ~40%, mutations ~15%, kills the rest (each part trims itself)
        left = budget - (time.time() - t0)
        log("bad inputs per command")
        case_res = run_cases(w, args.quick, time.time() + 0.40 * left, log)
        log("mutations per format")
        fmts = run_mutations(w, m, args.seed, time.time() + 0.15 * left, log)
        log("kill -9")
        left = budget - (time.time() - t0)
        end = time.time() + left
        # a trial starts only while its part's share is not spent: train ~40%, convert ~25%, extract the rest
        kills = [kills_train(w, k, rng, time.time() + 0.40 * left - 25, log)]
        kills.append(kills_convert(w, k, rng, time.time() + 0.40 * (end - time.time()) - 15, log,
                                   frames=60 if args.quick else 150))
        kills.append(kills_extract(w, k, rng, end - 30, log, part_s=2.0 if args.quick else 5.0,
                                   frames=300 if args.quick else 600))
        report = table(case_res, fmts, kills, time.time() - t0, args)
        print()
        print(report)
        if args.json:
            args.json.write_text(json.dumps({
                "seed": args.seed, "quick": args.quick, "seconds": round(time.time() - t0, 1),
                "cases": [{"command": r.case.command, "case": r.case.label, "verdict": r.verdict, "exit": r.ran.rc,
                           "detail": r.detail} for r in case_res],
                "formats": [vars(f) for f in fmts], "kills": [vars(x) for x in kills]}, indent=1))
        return 0
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

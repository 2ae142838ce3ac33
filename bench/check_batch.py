"""`veriswap check` on a folder of N photos and short clips (issue 14's batch promise), run the way a user
runs it: the command in a new process with `--jobs`, killed part-way (SIGKILL to the command's process,
as an OOM killer or a closed SSH session would), then the same command again, which continues from its
results file; then once more, when everything is already done.

The folder (real faces: swap.samples' astronaut and Grace Hopper photos, moved, scaled, rotated and
relit per file, signed with the toolkit's own keygen identity and `sign_file`):
  photos, per 20: 9 signed captures (1 of them PNG), 2 signed with an AI declaration (convert's swap
  facts), 2 signed then tampered (one byte of the picture changed), 7 unsigned (C2PA absent, so the
  watermark is searched);
  clips (N/50, at least 4; 16 frames 320x240), per 4: a signed swap, a tagged camera clip, the same with
  one coded frame altered (tags flag it), an unsigned clip;
  plus 3 files the walk skips (a note, a hidden file, a results-looking .jsonl) and the clips' .tags.

Printed: per run the files checked, wall time, files/s, peak memory of the process tree (the command and
its workers, RSS summed, sampled every 0.2 s), whether workers outlived the killed command; then the
verdict counts against the folder's construction and the command's summary table.

Run: .venv/bin/python bench/check.py --batch 1000 [--jobs 2] [--kill-at 0.4] [--work DIR]
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
PHOTO_SLOTS = ["signed"] * 8 + ["signed-png", "ai", "ai", "tampered", "tampered"] + ["unsigned"] * 7
CLIP_SLOTS = ["swap", "cam", "cam_edit", "unsigned-clip"]
EXPECTED = {"signed": "signed capture", "signed-png": "signed capture", "ai": "signed, AI declared",
            "tampered": "tampered", "unsigned": "cannot tell", "swap": "signed, AI declared",
            "cam": "signed capture", "cam_edit": "tampered", "unsigned-clip": "cannot tell"}


def _vary(base, i: int, scale=(2.0, 5.0)):
    """A different picture of the same real face for file i: scaled (default 2-5x: 1k-3k px, camera-like
    sizes), rotated, relit."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(i)
    h, w = base.shape[:2]
    k = float(rng.uniform(*scale))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-12, 12)), k)
    W, H = int(w * k), int(h * k)
    m[:, 2] += ((W - w) / 2, (H - h) / 2)
    img = cv2.warpAffine(base, m, (W, H), borderMode=cv2.BORDER_REFLECT)
    return np.clip(img.astype(np.float32) * float(rng.uniform(0.8, 1.2)), 0, 255).astype(np.uint8)


def _tamper(path: Path) -> None:
    """Change one byte of the picture data near the end of the file (not a marker, not the manifest)."""
    data = bytearray(path.read_bytes())
    pos = len(data) - 1000
    while data[pos] in (0x00, 0xFE, 0xFF) or data[pos - 1] == 0xFF:
        pos -= 1
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))


def _facts(src: Path, frames: int):
    from provenance.c2pa_sign import SwapFacts

    return SwapFacts(model_hash="sha256:" + "0" * 64, direction="b2a", model_name="original",
                     identities={"a": "astronaut", "b": "grace_hopper"}, frames_total=frames,
                     frames_swapped=frames, faces_swapped=frames, source=str(src))


def _photo(d: Path, raw: Path, i: int, slot: str, bases, ident, scale) -> Path:
    import cv2

    from provenance.c2pa_sign import sign_file

    ext = ".png" if slot == "signed-png" else ".jpg"
    src = raw / f"p{i:05d}{ext}"
    cv2.imwrite(str(src), cv2.cvtColor(_vary(bases[i % 2], i, scale), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == ".jpg" else [])
    out = d / "photos" / f"{i // 100:02d}" / f"{slot}_{i:05d}{ext}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if slot == "unsigned":
        os.replace(src, out)
        return out
    sign_file(src, out, ident, facts=_facts(src, 1) if slot == "ai" else None)
    if slot == "tampered":
        _tamper(out)
    return out


def _clip(d: Path, raw: Path, j: int, slot: str, ident) -> List[Path]:
    import shutil

    from provenance.c2pa_sign import sign_file
    from provenance.remux import alter_frame, remux_edit
    from provenance.tags import tag_video
    from swap.samples import make_face_video

    out = d / "clips" / f"{slot}_{j:03d}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    who = "astronaut" if j % 2 else "grace_hopper"
    src = make_face_video(raw / f"c{j:03d}.mp4", who, frames=16, size=(320, 240), audio=False)
    if slot == "swap":
        sign_file(src, out, ident, facts=_facts(src, 16))
    elif slot == "unsigned-clip":
        os.replace(src, out)
    else:
        tag_video(src, ident.key_dir / "tag.key")
        if slot == "cam":
            os.replace(src, out)
            os.replace(str(src) + ".tags", str(out) + ".tags")
        else:
            remux_edit(src, out, alter_frame(7))
            shutil.move(str(src) + ".tags", str(out) + ".tags")
    return [out]


def build(d: Path, n: int, ident, scale=(2.0, 5.0)) -> Dict[str, str]:
    """The folder under d/in; returns {path: expected verdict word}."""
    from swap.samples import load_photo

    raw, inp = d / "raw", d / "in"
    raw.mkdir(parents=True, exist_ok=True)
    bases = [load_photo("astronaut"), load_photo("grace_hopper")]
    clips = max(4, n // 50)
    expected: Dict[str, str] = {}
    for i in range(n - clips):
        slot = PHOTO_SLOTS[i % len(PHOTO_SLOTS)]
        expected[str(_photo(inp, raw, i, slot, bases, ident, scale))] = EXPECTED[slot]
    for j in range(clips):
        slot = CLIP_SLOTS[j % len(CLIP_SLOTS)]
        for p in _clip(inp, raw, j, slot, ident):
            expected[str(p)] = EXPECTED[slot]
    (inp / "notes.txt").write_text("a note the walk skips\n")
    (inp / ".DS_Store").write_bytes(b"\0" * 64)
    (inp / "old-results.jsonl").write_text("{}\n")
    return expected


def _lines(p: Path) -> int:
    try:
        with open(p, "rb") as f:
            return max(0, f.read().count(b"\n") - 1)        # minus the header line
    except FileNotFoundError:
        return 0


def run(cmd: List[str], env: Dict[str, str], results: Path, name: str, kill_at: Optional[int] = None) -> Dict:
    """Run the command; sample its process tree's memory; SIGKILL it once `kill_at` records are written.
    Its output goes to files (a pipe would stay open in workers that outlive a killed command)."""
    import psutil

    t0 = time.perf_counter()
    out, err = (open(results.with_name(f"{name}.{k}.txt"), "w+") for k in ("stdout", "stderr"))
    proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=out, stderr=err, text=True)
    ps = psutil.Process(proc.pid)
    peak, workers, killed = 0, [], False
    while proc.poll() is None:
        try:
            tree = [ps] + ps.children(recursive=True)
            workers = [c.pid for c in tree[1:]] or workers
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        if kill_at is not None and _lines(results) >= kill_at:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.2)
    proc.wait()
    wall = time.perf_counter() - t0
    time.sleep(3.0)
    orphans = [p for p in workers if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    for p in orphans:                                       # leave nothing running behind the benchmark
        os.kill(p, signal.SIGKILL)
    out.seek(0)
    err.seek(0)
    return {"wall": wall, "peak_mb": peak / 2 ** 20, "killed": killed, "rc": proc.returncode, "stderr": err.read(),
            "stdout": out.read(), "records": _lines(results), "workers": len(workers), "orphans": len(orphans)}


def _table(runs) -> None:
    done = 0
    print(f"  {'run':<26}{'checked':>8}{'wall s':>9}{'files/s':>9}{'peak MB':>9}  notes")
    for name, r in runs:
        checked = r["records"] - (done if name in ("resumed", "re-run, all done") else 0)
        done = r["records"]
        note = [ln for ln in r["stderr"].splitlines() if ln.startswith(("resuming", "error", "Traceback"))]
        if r["killed"]:
            note.append(f"SIGKILL after {checked} records; {r['orphans']} of {r['workers']} workers outlived it")
        print(f"  {name:<26}{checked:>8}{r['wall']:>9.1f}{checked / r['wall']:>9.1f}{r['peak_mb']:>9.0f}  "
              f"exit {r['rc']}; " + "; ".join(note))


def main(n: int, jobs: int, kill_frac: float, work: Path, scale=(2.0, 5.0)) -> None:
    from provenance.keys import generate_identity, load_identity

    t0 = time.perf_counter()
    made = work / "batch" / "expected.json"        # a folder built before with the same N and scale is reused
    want = {"n": n, "scale": list(scale)}
    old = json.loads(made.read_text()) if made.is_file() else {}
    if old.get("build") == want and all(Path(p).is_file() for p in old["files"]):
        ident, expected, how = load_identity(work / "keys"), old["files"], "reused"
    else:
        ident = generate_identity(work / "keys", name="bench batch", overwrite=True)
        expected, how = build(work / "batch", n, ident, scale), "built"
        made.write_text(json.dumps({"build": want, "files": expected}))
    mb = sum(Path(p).stat().st_size for p in expected) / 2 ** 20
    print(f"\n[3] batch: {len(expected)} files ({mb:.0f} MB; photos {512 * scale[0]:.0f}-{600 * scale[1]:.0f} px) "
          f"{how} in {time.perf_counter() - t0:.0f} s; --jobs {jobs}; load average {os.getloadavg()[0]:.1f}")
    results = work / "batch" / "results.jsonl"
    for f in work.glob("batch/*.jsonl"):
        f.unlink()
    (work / "store").mkdir(exist_ok=True)
    env = dict(os.environ, VERISWAP_HOME=str(work / "home"), PYTHONPATH=str(ROOT))

    def cmd(j: int, res: Path, *extra: str) -> List[str]:
        return [sys.executable, "-c", "from veriswap.cli import main; main()", "check", str(work / "batch" / "in"),
                "--trust-anchor", str(ident.key_dir / "root.pem"), "--tag-key", str(ident.key_dir / "tag.key"),
                "--store", str(work / "store"), "--jobs", str(j), "--results", str(res), *extra]
    runs = [("killed", run(cmd(jobs, results), env, results, "run1", kill_at=int(kill_frac * n)))]
    runs.append(("resumed", run(cmd(jobs, results), env, results, "run2")))
    runs.append(("re-run, all done", run(cmd(jobs, results), env, results, "run3")))
    for j in sorted({jobs, 1}, reverse=True):         # uninterrupted, for comparison
        res = results.with_name(f"fresh-jobs{j}.jsonl")
        runs.append((f"fresh, --jobs {j}", run(cmd(j, res, "--fresh"), env, res, f"fresh{j}")))
    _table(runs)
    recs: Dict[str, List[str]] = {}
    for line in results.read_text().splitlines()[1:]:
        rec = json.loads(line)
        recs.setdefault(rec["path"], []).append(rec["verdict"]["word"])
    dup = sum(len(v) > 1 for v in recs.values())
    wrong = [(p, w, recs.get(p)) for p, w in expected.items() if recs.get(p, [None])[-1] != w]
    print(f"  results file: {len(recs)} files, {dup} recorded twice, {len(wrong)} verdicts not as built"
          + (f": {wrong[:3]}" if wrong else ""))
    total = runs[0][1]["wall"] + runs[1][1]["wall"]
    print(f"  killed + resumed: {n} files in {total:.0f} s ({n / total:.1f} files/s over both runs)")
    out = runs[1][1]["stdout"].rstrip().splitlines()
    print("  the command's summary (resumed run), its verdict table and last line:\n"
          + "\n".join("    " + ln for ln in out[:9] + out[-2:]))

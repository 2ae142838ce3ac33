"""`veriswap check` on every third-party C2PA fixture (../shared/fixtures/c2pa and tests/fixtures/c2pa_extra:
c2pa-rs / c2pa-python test files, see the LICENSE-NOTE.txt files), checked as a folder in a batch, with and
without the C2PA test trust anchors. Every expected state, AI declaration and exit code is read from
c2pa-python's own Reader here (test_provenance_interop.c2pa_truth), never from veriswap."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_provenance_interop import (ANCHORS, EXTRA, c2pa_truth, claim_signature, expected_state,  # noqa: E402
                                     fixture_paths, manifest_store)

from veriswap.check import CheckOptions, check_paths  # noqa: E402
from veriswap.check.evidence import SYNTHETIC  # noqa: E402

pytestmark = pytest.mark.skipif(not ANCHORS.is_file(), reason="third-party C2PA fixtures not found")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("VERISWAP_HOME", str(tmp_path / "home"))


def _declared(truth: dict) -> set:
    """The IPTC digital source types the active manifest's actions declare, as c2pa reads them."""
    return {a.get("digitalSourceType", "").strip().rsplit("/", 1)[-1]
            for asr in truth["manifest"]["assertions"] if asr["label"].startswith("c2pa.actions")
            for a in asr["data"].get("actions", [])} - {""}


def _expected_word(truth: dict) -> set:
    state = expected_state(truth)
    if state == "invalid":
        return {"tampered", "signature not valid"}
    if state == "no-manifest":
        return {"cannot tell"}
    return {"signed, AI declared"} if _declared(truth) & set(SYNTHETIC) else {"signed capture"}


@pytest.mark.parametrize("anchors", [False, True], ids=["no-anchor", "test-anchors"])
def test_check_gives_c2pa_readers_state_on_every_third_party_file(anchors, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, p in enumerate(fixture_paths()):
        (folder / str(i % 3)).mkdir(exist_ok=True)
        shutil.copy(p, folder / str(i % 3) / p.name)
    opts = CheckOptions(trust_anchors=[str(ANCHORS)] if anchors else [])
    recs, skipped = check_paths([folder], opts, jobs=2, results=tmp_path / "results.jsonl")
    by_name = {Path(r["path"]).name: r for r in recs}
    assert sorted(by_name) == sorted(p.name for p in fixture_paths()) and not skipped
    for p in fixture_paths():
        truth, rec = c2pa_truth(p, anchors), by_name[p.name]
        assert rec["c2pa"]["state"] == expected_state(truth), (p.name, rec["c2pa"]["state"], truth.get("error"))
        assert rec["verdict"]["word"] in _expected_word(truth), (p.name, rec["verdict"])
        assert rec["verdict"]["exit_code"] == (0 if truth["state"] == "Trusted" else 1), p.name
        assert rec["verdict"]["trusted"] == (truth["state"] == "Trusted"), p.name
        if truth["state"] in ("Trusted", "Valid"):
            assert rec["c2pa"]["ai_declared"] == bool(_declared(truth) & set(SYNTHETIC)), p.name
        if truth.get("error") and rec["c2pa"]["state"] == "no-manifest":
            assert rec["c2pa"]["remote_manifest"] and "cannot tell" == rec["verdict"]["word"]


def test_check_revoked_third_party_signer_is_signature_not_valid(tmp_path, capsys):
    """The command with --revoked naming the Photoshop file's own signing certificate (a verifier's deny
    list needs no key): c2pa calls the file Valid; check calls it not valid, and says why."""
    from cryptography.hazmat.primitives import serialization

    from veriswap.cli import main

    path = EXTRA / "ocsp.jpg"
    truth = c2pa_truth(path, True)
    assert truth["state"] == "Valid"
    cert = claim_signature(manifest_store(path.read_bytes()), truth["label"]).chain[0]
    pem = tmp_path / "revoked.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(SystemExit) as e:
        main(["check", str(path), "--trust-anchor", str(ANCHORS), "--revoked", str(pem)])
    out = capsys.readouterr().out
    assert e.value.code == 1 and "SIGNATURE NOT VALID" in out and "revoked" in out.lower(), out


def test_batch_after_c2pa_started_native_threads_does_not_deadlock(tmp_path):
    """c2pa's library keeps a native thread pool once it has read a PDF; a worker forked from such a process
    hung for ever inside c2pa's reader. check_paths then starts its workers from a clean process instead.
    Run in a subprocess so that a regression fails on the timeout instead of hanging the suite."""
    import subprocess

    code = f"""
import os, shutil, threading, c2pa
from pathlib import Path
from veriswap.check import CheckOptions, check_paths
from veriswap.check.batch import _native_threads, _pool_context
with c2pa.Reader({str(EXTRA / "pdf-file.pdf")!r}) as r:
    r.json()
assert _native_threads() > 0 and _pool_context(False).get_start_method() != "fork"
folder = Path({str(tmp_path / "in")!r}); folder.mkdir()
for p in {[str(p) for p in EXTRA.iterdir() if p.suffix != ".txt"]!r}:
    shutil.copy(p, folder)                          # the PDF among them: its reader is what hung
recs, _ = check_paths([folder], CheckOptions(), jobs=2)
print(len(recs))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         env=dict(__import__("os").environ, VERISWAP_HOME=str(tmp_path / "home")))
    assert res.returncode == 0 and res.stdout.strip() == str(len(list(EXTRA.glob("*.*"))) - 1), res.stderr[-2000:]


@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C"])
def test_an_interrupted_batch_command_leaves_no_workers_and_resumes(how, tmp_path):
    """The command on 168 copies of the fixtures, stopped once 20 results are in: killed outright (its workers
    must end with it, without tracebacks) or by Ctrl-C (exit 130, says what it kept). The same command
    then checks only the rest."""
    import os
    import signal
    import subprocess
    import time

    folder = tmp_path / "in"
    for k in range(8):
        (folder / str(k)).mkdir(parents=True)
        for p in fixture_paths():
            shutil.copy(p, folder / str(k) / p.name)
    n = 8 * len(fixture_paths())
    results = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-c", "from veriswap.cli import main; main()", "check", str(folder), "--jobs", "2",
           "--results", str(results), "--no-progress", "--trust-anchor", str(ANCHORS)]
    env = dict(os.environ, VERISWAP_HOME=str(tmp_path / "home"))
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.monotonic()
    while p.poll() is None and time.monotonic() - t0 < 120:
        if results.is_file() and results.read_bytes().count(b"\n") > 20:
            break
        time.sleep(0.05)
    workers = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    if how == "SIGKILL":
        os.kill(p.pid, signal.SIGKILL)
    else:
        os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=60)
    time.sleep(1.0)
    kept = results.read_bytes().count(b"\n") - 1
    def alive(pid: str) -> bool:         # a zombie waits for a reaper; it does no work
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    assert workers and not [w for w in workers if alive(w)], "workers outlived the command"
    assert "Traceback" not in err and 0 < kept < n, (kept, err[-1500:])
    if how == "Ctrl-C":
        assert p.returncode == 130 and f"interrupted: {kept} of {n} files checked and kept in" in err, err
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and f"resuming: {kept} of {n} files already checked" in res.stderr, res.stderr
    assert results.read_bytes().count(b"\n") - 1 == n

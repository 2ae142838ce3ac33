"""`veriswap provenance` end to end in a subprocess: exit codes 0/1/2, one-line errors, no tracebacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swap.samples import make_face_video


CLI = "veriswap.cli" if (Path(__file__).parents[1] / "veriswap" / "cli.py").exists() else "swap.cli"


def run(*args: str, env_extra: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    env.pop("VERISWAP_DEBUG", None)
    return subprocess.run([sys.executable, "-m", CLI, "provenance", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    make_face_video(d / "clip.mp4", frames=10, size=(256, 192))
    return d


def test_keygen_sign_verify_tag_check_roundtrip(work):
    home = {"VERISWAP_HOME": str(work / "home"), "VS_PASS": "s3cret pass"}
    r = run("keygen", "-o", str(work / "id"), "--name", "CLI Test", "--passphrase-env", "VS_PASS", env_extra=home)
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in r.stdout + r.stderr  # never echo secrets
    # encrypted key without its passphrase (no terminal to prompt on): clear exit 2
    r = run("sign", str(work / "clip.mp4"), "-k", str(work / "id"), "-o", str(work / "s.mp4"), env_extra=home)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    r = run("sign", str(work / "clip.mp4"), "-k", str(work / "id"), "-o", str(work / "s.mp4"),
            "--passphrase-env", "VS_PASS", env_extra=home)
    assert r.returncode == 0, r.stderr
    r = run("verify", str(work / "s.mp4"), env_extra=home)
    assert r.returncode == 1 and "VALID BUT UNTRUSTED" in r.stdout
    r = run("verify", str(work / "s.mp4"), "--trust-anchor", str(work / "id" / "root.pem"), "--json", env_extra=home)
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["state"] == "trusted"
    r = run("verify", str(work / "clip.mp4"), env_extra=home)
    assert r.returncode == 1 and "NO MANIFEST" in r.stdout
    # sign with no -k uses (and creates) the default identity under $VERISWAP_HOME
    r = run("sign", str(work / "clip.mp4"), "-o", str(work / "d.mp4"), env_extra=home)
    assert r.returncode == 0, r.stderr
    assert (work / "home" / "identity" / "root.pem").is_file()
    # several files (a dataset's worth): a line each, a tally, exit 0 only when every one is trusted
    anchor = str(work / "id" / "root.pem")
    r = run("verify", str(work / "s.mp4"), str(work / "d.mp4"), str(work / "clip.mp4"), "--trust-anchor", anchor,
            env_extra=home)
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines()[-1] == "verify: 3 files: 1 trusted, 1 valid-untrusted, 0 invalid, 1 no-manifest"
    assert [ln.split()[0] for ln in r.stdout.splitlines()[:3]] == ["TRUSTED", "VALID-UNTRUSTED", "NO-MANIFEST"]
    r = run("verify", str(work / "s.mp4"), str(work / "s.mp4"), "--trust-anchor", anchor, "--json", env_extra=home)
    assert r.returncode == 0 and [x["state"] for x in json.loads(r.stdout)] == ["trusted", "trusted"]
    empty = work / "empty"
    empty.mkdir()
    r = run("verify", str(empty), env_extra=home)
    assert r.returncode == 2 and r.stderr.startswith("error: no files c2pa can read in")
    # tag.key is encrypted with the keygen passphrase too (issue 16 item 5): no passphrase, clean exit 2
    r = run("tag", str(work / "clip.mp4"), "--key", str(work / "id" / "tag.key"), env_extra=home)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "encrypted" in r.stderr, r.stderr
    pw = ("--passphrase-env", "VS_PASS")
    r = run("tag", str(work / "clip.mp4"), "--key", str(work / "id" / "tag.key"), *pw, env_extra=home)
    assert r.returncode == 0, r.stderr
    assert (work / "clip.mp4.tags").is_file()
    r = run("check", str(work / "clip.mp4"), "--key", str(work / "id" / "tag.key"), *pw, env_extra=home)
    assert r.returncode == 0 and "AUTHENTIC" in r.stdout and ".........." in r.stdout
    # the C2PA-signed copy has the same coded frames: its tags still check
    r = run("check", str(work / "s.mp4"), "--tags", str(work / "clip.mp4.tags"),
            "--key", str(work / "id" / "tag.key"), *pw, "--json", env_extra=home)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True
    # Ed25519 tags: private key to tag (passphrase from env), certificate to check
    r = run("tag", str(work / "clip.mp4"), "--key", str(work / "id" / "signer.key"), "--mode", "ed25519",
            "-o", str(work / "ed.tags"), "--passphrase-env", "VS_PASS", env_extra=home)
    assert r.returncode == 0, r.stderr
    r = run("check", str(work / "clip.mp4"), "--tags", str(work / "ed.tags"), "--key",
            str(work / "id" / "signer.pem"), env_extra=home)
    assert r.returncode == 0, r.stdout


def test_tampered_and_garbage_inputs_exit_codes(work):
    key = work / "k.key"
    key.write_text(os.urandom(32).hex() + "\n")
    assert run("tag", str(work / "clip.mp4"), "--key", str(key), "-o", str(work / "t.tags")).returncode == 0
    data = bytearray((work / "clip.mp4").read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 3000] ^= 0xFF
    (work / "bad.mp4").write_bytes(bytes(data))
    r = run("check", str(work / "bad.mp4"), "--tags", str(work / "t.tags"), "--key", str(key))
    assert r.returncode == 1 and "TAMPERED" in r.stdout and "first bad" in r.stdout
    garbage = work / "garbage.tags"
    garbage.write_bytes(os.urandom(300))
    cases = [
        ("check", str(work / "clip.mp4"), "--tags", str(garbage), "--key", str(key)),
        ("check", str(work / "clip.mp4"), "--tags", str(work / "none.tags"), "--key", str(key)),
        ("verify", str(garbage)),
        ("verify", str(work / "missing.mp4")),
        ("sign", str(work / "clip.mp4"), "-k", str(work / "no-such-identity")),
        ("tag", str(garbage), "--key", str(key)),
        ("tag", str(work / "clip.mp4"), "--key", str(key), "--mode", "rsa"),
        ("keygen", "-o", str(work / "x"), "--passphrase-env", "VS_UNSET_VARIABLE"),
    ]
    for args in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, args
        assert r.stderr.startswith("error:") or "Error" in r.stderr, (args, r.stderr)


def test_provenance_imports_neither_torch_nor_swap_nor_detect():
    code = ("import sys, provenance.cli, provenance.keys, provenance.c2pa_sign, provenance.c2pa_verify, "
            "provenance.tags; bad = [m for m in ('torch', 'swap', 'detect', 'cv2') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

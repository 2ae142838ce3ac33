"""`veriswap ui`'s security rules and job records, against a real server (the `veriswap ui` command in a
subprocess, plain urllib requests): the token on every request, the Host check, uploads (names, size limit,
where they land), reads confined to the work folder (no `..`, no absolute path, no symlink), job
parameters checked the same way, and job records that survive a server restart and resume after a kill.
Fast: no model is trained here (tests/test_ui_browser.py drives the whole app in Chromium)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

import pytest

from veriswap.ui.security import Refused, Workdir, host_ok, safe_name


class UIServer:
    """`veriswap ui --port 0` in a subprocess; `.url` (with the token), `.base`, `.token`."""

    def __init__(self, workdir: Path, *args: str, env: Optional[dict] = None):
        self.workdir = Path(workdir)
        cmd = [sys.executable, "-m", "veriswap.cli", "ui", "--port", "0", "--workdir", str(workdir), *args]
        e = dict(os.environ, **(env or {}))
        e.pop("VERISWAP_UI_TOKEN", None)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e)
        self.lines = []
        t0 = time.time()
        while time.time() - t0 < 60:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"(http://\S+)/\?token=(\S+)", line)
            if m:
                self.base, self.token = m.group(1), m.group(2)
                self.url = f"{self.base}/?token={self.token}"
                return
        self.stop()
        raise RuntimeError("veriswap ui did not start:\n" + "".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, path: str, data: Optional[bytes] = None, method: Optional[str] = None, token: Optional[str] = "header",
                headers: Optional[dict] = None, json_body=None):
        """(status, parsed JSON or text). token: 'header' | 'query' | None | any other string (sent as the header)."""
        h = dict(headers or {})
        url = self.base + path
        if token == "header":
            h["X-Veriswap-Token"] = self.token
        elif token == "query":
            url += ("&" if "?" in url else "?") + "token=" + self.token
        elif token is not None:
            h["X-Veriswap-Token"] = token
        if json_body is not None:
            data = json.dumps(json_body).encode()
            h["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"), headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), e.headers.get("content-type", "")
        if "json" in ctype:
            return status, json.loads(body)
        return status, body.decode("utf-8", "replace")

    def wait_job(self, job_id: str, until=lambda j: not j["active"], timeout: float = 120) -> dict:
        t0 = time.time()
        while time.time() - t0 < timeout:
            st, j = self.request(f"/api/jobs/{job_id}")
            assert st == 200, j
            if until(j):
                return j
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} still {j['state']} after {timeout}s: {j}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the web app")
    wd = root / "work"
    wd.mkdir()
    (wd / "uploads").mkdir()
    (wd / "hello.txt").write_text("hello")
    os.symlink(outside / "secret.txt", wd / "link.txt")          # a symlink to a file outside
    os.symlink(outside, wd / "linkdir")                          # and to a folder outside
    s = UIServer(wd, "--max-upload-mb", "1")
    s.outside = outside
    yield s
    s.stop()


# ---- pure rules ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil.mp4", "..\\evil.mp4", "a/b.mp4", "/etc/passwd", "..", ".", "", "x\x00.mp4",
                                  "..evil"])
def test_safe_name_refuses_folders_and_climbing(name):
    with pytest.raises(Refused):
        safe_name(name)


def test_safe_name_cleans_odd_characters():
    assert safe_name("my clip (1).mp4") == "my clip (1).mp4"
    assert safe_name("<script>.mp4") == "_script_.mp4"
    assert safe_name(".hidden.mp4") == "hidden.mp4"
    assert safe_name("Ünïcode ☃.mov").endswith(".mov")
    assert len(safe_name("a" * 400 + ".mp4")) <= 120 and safe_name("a" * 400 + ".mp4").endswith(".mp4")


def test_workdir_resolve(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f.txt").write_text("x")
    wd = Workdir(tmp_path / "w")
    (wd.root / "ok").mkdir()
    os.symlink(tmp_path / "out", wd.root / "sym")
    assert wd.resolve("ok") == wd.root / "ok"
    assert wd.resolve("") == wd.root
    for bad in ("../out/f.txt", "ok/../../out/f.txt", "/etc/passwd", "sym/f.txt", "sym", ".veriswap-ui/jobs", "C:/x"):
        with pytest.raises(Refused):
            wd.resolve(bad)


def test_host_check():
    allowed = ["127.0.0.1", "localhost", "::1"]
    assert host_ok("127.0.0.1:8765", allowed) and host_ok("localhost:1", allowed) and host_ok("[::1]:80", allowed)
    assert not host_ok("evil.example:8765", allowed) and not host_ok(None, allowed) and not host_ok("127.0.0.1.evil.example", allowed)
    assert host_ok("anything", ["*"])


# ---- the server ---------------------------------------------------------------------------------------

def test_binds_localhost_and_prints_token(server):
    assert server.base.startswith("http://127.0.0.1:")
    assert len(server.token) >= 24
    assert any("keep it private" in line for line in server.lines)


@pytest.mark.parametrize("path,method", [("/", "GET"), ("/static/app.js", "GET"), ("/api/info", "GET"),
                                         ("/api/jobs", "GET"), ("/api/file?path=hello.txt", "GET"),
                                         ("/api/events", "GET"), ("/api/upload?name=a.mp4", "POST"),
                                         ("/api/jobs", "POST"), ("/api/keys", "POST")])
def test_token_required_everywhere(server, path, method):
    data = b"x" if method == "POST" else None
    st, body = server.request(path, data=data, method=method, token=None)
    assert st == 403 and "token" in body
    st, body = server.request(path, data=data, method=method, token="wrong-token")
    assert st == 403 and "wrong" in body
    assert not (server.workdir / "uploads" / "a.mp4").exists()


def test_token_by_query_header_and_cookie(server):
    assert server.request("/api/info", token="query")[0] == 200
    assert server.request("/api/info", token="header")[0] == 200
    st, page = server.request("/", token="query")
    assert st == 200 and "<title>veriswap</title>" in page
    cookie = {"Cookie": f"veriswap_token_{server.base.rsplit(':', 1)[1]}={server.token}"}
    assert server.request("/api/info", token=None, headers=cookie)[0] == 200
    # the cookie alone never authorises a change (another site could make the browser send it)
    st, _ = server.request("/api/keys", token=None, headers=cookie, json_body={"name": "k1"})
    assert st == 403
    assert not (server.workdir / "keys" / "k1").exists()


def test_host_header_checked(server):
    st, body = server.request("/api/info", headers={"Host": "evil.example:80"})
    assert st == 403 and "Host" in body


def test_upload_lands_in_the_workdir(server):
    st, d = server.request("/api/upload?dir=uploads&name=" + urllib.request.quote("my clip.mp4"), data=b"\x00" * 1000)
    assert st == 200 and d["path"] == "uploads/my clip.mp4" and d["size"] == 1000
    st, d2 = server.request("/api/upload?dir=uploads&name=" + urllib.request.quote("my clip.mp4"), data=b"\x01" * 10)
    assert st == 200 and d2["path"] == "uploads/my clip (1).mp4"        # never overwrites
    assert (server.workdir / "uploads" / "my clip.mp4").read_bytes() == b"\x00" * 1000


@pytest.mark.parametrize("query,status", [
    ("name=../evil.mp4", 400), ("name=..%2F..%2Fevil.mp4", 400), ("name=..%5Cevil.mp4", 400), ("name=a%2Fb.mp4", 400),
    ("name=%2Fetc%2Fevil", 400), ("dir=..&name=evil.mp4", 403), ("dir=uploads%2F..%2F..&name=evil.mp4", 403),
    ("dir=%2Ftmp&name=evil.mp4", 403), ("dir=linkdir&name=evil.mp4", 403), ("dir=.veriswap-ui&name=evil.mp4", 403),
    ("name=", 400)])
def test_upload_traversal_refused(server, query, status):
    st, d = server.request("/api/upload?" + query, data=b"data")
    assert st == status, d
    assert "refused" in d["error"] or "no file name" in d["error"]
    assert not (server.workdir.parent / "evil.mp4").exists() and not (server.outside / "evil.mp4").exists()
    assert not Path("/tmp/evil.mp4").exists() or Path("/tmp/evil.mp4").stat().st_mtime < time.time() - 60


def _post_big(server, path: str, body: bytes, chunked: bool):
    """POST `body`, reading the answer even when the server answers (413) and closes before it has all of it."""
    import http.client
    host, port = server.base.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", path)
    conn.putheader("X-Veriswap-Token", server.token)
    conn.putheader("Transfer-Encoding" if chunked else "Content-Length", "chunked" if chunked else str(len(body)))
    conn.endheaders()
    try:
        for i in range(0, len(body), 65536):
            part = body[i:i + 65536]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
        if chunked:
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = conn.getresponse()
    out = r.status, json.loads(r.read())
    conn.close()
    return out


@pytest.mark.parametrize("chunked", [False, True])
def test_upload_size_limit(server, chunked):
    """Refused by the declared length before reading, or (no length declared) as soon as the bytes pass it."""
    st, d = _post_big(server, "/api/upload?name=big.mp4", b"\x00" * (1024 ** 2 + 70000), chunked)
    assert st == 413 and "limit" in d["error"]
    assert not (server.workdir / "uploads" / "big.mp4").exists()
    assert not [p for p in (server.workdir / "uploads").iterdir() if p.name.startswith(".upload-")]   # no temp left


@pytest.mark.parametrize("path,status", [("../outside/secret.txt", 403), ("/etc/passwd", 403), ("link.txt", 403),
                                         ("linkdir/secret.txt", 403), (".veriswap-ui/jobs", 403), ("nope.txt", 404),
                                         ("uploads/..%2F..%2Foutside%2Fsecret.txt", 403)])
def test_file_reads_confined(server, path, status):
    st, body = server.request("/api/file?path=" + path.replace("/", "%2F") if "%" not in path else "/api/file?path=" + path)
    assert st == status, body
    assert "not for the web app" not in str(body)


def test_file_read_and_listing(server):
    st, body = server.request("/api/file?path=hello.txt")
    assert st == 200 and body == "hello"
    st, d = server.request("/api/files?dir=")
    names = {f["path"] for f in d["files"]}
    assert "hello.txt" in names and "link.txt" not in names and not any(n.startswith("linkdir") for n in names)
    assert not any(n.startswith(".veriswap-ui") for n in names)
    assert server.request("/api/files?dir=..")[0] == 403


def test_job_parameters_confined(server):
    st, d = server.request("/api/jobs", json_body={"kind": "check", "params": {"path": "../outside/secret.txt"}})
    assert st == 403 and "refused" in d["error"]
    st, d = server.request("/api/jobs", json_body={"kind": "check", "params": {"path": "hello.txt",
                                                                               "tag_key": "/etc/passwd"}})
    assert st == 403
    st, d = server.request("/api/jobs", json_body={"kind": "detect_dataset", "params": {"real": ["hello.txt"], "fake": ["hello.txt"],
                                                                                        "out": "../elsewhere"}})
    assert st == 403
    st, d = server.request("/api/jobs", json_body={"kind": "rm -rf", "params": {}})
    assert st == 400
    st, d = server.request("/api/projects", json_body={"name": "../x", "samples": True})
    assert st == 400
    st, d = server.request("/api/projects", json_body={"name": "p", "a": ["link.txt"], "b": ["hello.txt"]})
    assert st == 403


def test_keys_public_parts_only(server):
    st, k = server.request("/api/keys", json_body={"name": "newsroom", "org": "Test Newsroom"})
    assert st == 200, k
    assert k["anchor"] == "keys/newsroom/root.pem" and "Test Newsroom" in k["signer"]["subject"]
    assert "PRIVATE" not in json.dumps(k)
    assert server.request("/api/keys", json_body={"name": "newsroom"})[0] == 409     # never overwritten
    st, pem = server.request("/api/file?path=keys%2Fnewsroom%2Froot.pem&download=1")
    assert st == 200 and "BEGIN CERTIFICATE" in pem


def test_jobs_survive_restart_and_resume_after_kill(tmp_path):
    """A job record outlives the server; a worker killed mid-run shows as interrupted and a resume finishes it."""
    wd = tmp_path / "work"
    s = UIServer(wd)
    try:
        st, d = s.request("/api/projects", json_body={"name": "p1", "samples": True, "frames": 10})
        assert st == 200, d
        done = s.wait_job(d["job"]["id"])
        assert done["state"] == "done" and done["result"]["a"].endswith("astronaut.mp4")
        # a long job, killed hard (as a crash would): the record says interrupted, and it can be resumed
        st, j = s.request("/api/jobs", json_body={"kind": "samples", "params": {"folder": "long", "frames": 3000}})
        running = s.wait_job(j["id"], until=lambda j: j.get("pid") and j["state"] == "running")
        os.killpg(running["pid"], signal.SIGKILL)
        j2 = s.wait_job(j["id"])
        assert j2["state"] == "interrupted" and j2["can_resume"]
        # cancel: a running job stops and says so
        st, j3 = s.request(f"/api/jobs/{j['id']}/resume", data=b"{}")
        assert st == 200 and j3["runs"] == 2
        s.wait_job(j["id"], until=lambda j: j["state"] == "running" and j.get("run") == 2)
        st, _ = s.request(f"/api/jobs/{j['id']}/cancel", data=b"{}")
        assert s.wait_job(j["id"])["state"] == "cancelled"
    finally:
        s.stop()
    s = UIServer(wd)            # a new server on the same folder: the same jobs, same states
    try:
        st, d = s.request("/api/jobs")
        states = {x["id"]: x["state"] for x in d["jobs"]}
        assert states[done["id"]] == "done" and states[j["id"]] == "cancelled"
        st, p = s.request("/api/projects/p1")
        assert st == 200 and p["project"]["a"] == ["swaps/p1/inputs/astronaut.mp4"]
    finally:
        s.stop()


# ---- train's time limit across runs (pause / restart / crash, then Resume) ------------------------------

@pytest.fixture
def fake_trainer(monkeypatch):
    """swap.train.train replaced: records the time limit each run is given; `.run` says what a run does."""
    import swap.train

    calls = []

    def train(cfg):
        calls.append(cfg.time_limit)
        return fake.run(cfg)
    fake = type("Fake", (), {"calls": calls, "run": staticmethod(lambda cfg: {"stopped_by": "SIGTERM", "seconds": 4.0})})
    monkeypatch.setattr(swap.train, "train", train)
    return fake


def test_resumed_training_gets_only_the_time_left(tmp_path, fake_trainer):
    """A train job's time limit covers all its runs: each Resume (after Pause / Stop / a restart) trains for
    what is left, recorded in the job's folder; once it is used up, a resume trains no more."""
    from veriswap.ui import tasks as T

    jobdir = tmp_path / "job"
    jobdir.mkdir()
    ctx = T.Ctx(jobdir=jobdir, report=lambda **kw: None)
    p = {"faces_a": "a", "faces_b": "b", "model_dir": str(tmp_path / "model"), "time_limit": 10}
    r1 = T.run_train(dict(p), ctx)
    assert r1["_stopped"] and r1["time_used_s"] == 4.0 and r1["time_limit_s"] == 10.0
    r2 = T.run_train(dict(p), ctx)                  # paused after 4 s: resumed with 6 s, not 10 s
    assert fake_trainer.calls == [10.0, 6.0] and r2["time_used_s"] == 8.0
    T.run_train(dict(p), ctx)
    assert fake_trainer.calls[-1] == 2.0
    r4 = T.run_train(dict(p), ctx)                  # 12 s used of 10: nothing left, no training
    assert len(fake_trainer.calls) == 3 and r4["iterations_run"] == 0 and "used up" in r4["note"]
    assert json.loads((jobdir / T.TRAIN_TIME).read_text())["seconds"] == 12.0


def test_no_resume_with_less_than_a_step_left(tmp_path, fake_trainer):
    """The trainer makes at least one step per run: a resume with less than one step's time left (by the
    speed in loss.csv) would overrun the job's limit by a whole step, so it does not start."""
    from veriswap.ui import tasks as T

    model, jobdir = tmp_path / "model", tmp_path / "job"
    model.mkdir()
    jobdir.mkdir()
    (model / "loss.csv").write_text("iteration,loss_a,loss_b,elapsed\n1,0.1,0.1,2.0\n2,0.1,0.1,4.0\n3,0.1,0.1,6.0\n")
    (jobdir / T.TRAIN_TIME).write_text(json.dumps({"seconds": 8.5}))        # 1.5 s left, a step takes 2 s
    ctx = T.Ctx(jobdir=jobdir, report=lambda **kw: None)
    p = {"faces_a": "a", "faces_b": "b", "model_dir": str(model), "time_limit": 10}
    assert T.run_train(dict(p), ctx)["iterations_run"] == 0 and fake_trainer.calls == []
    (jobdir / T.TRAIN_TIME).write_text(json.dumps({"seconds": 7.5}))        # 2.5 s left: one more step
    T.run_train(dict(p), ctx)
    assert fake_trainer.calls == [2.5]


def test_time_used_is_recorded_while_training(tmp_path, fake_trainer):
    """A run killed hard (no summary) keeps the seconds the trainer logged (loss.csv's cumulative `elapsed`
    past the checkpoint's); an earlier run's stale loss.csv does not count."""
    from veriswap.ui import tasks as T

    model = tmp_path / "model"
    model.mkdir()
    (model / "state.json").write_text(json.dumps({"iteration": 20, "elapsed": 100.0}))   # the checkpoint
    (model / "loss.csv").write_text("iteration,loss_a,loss_b,elapsed\n25,0.1,0.1,130.0\n")   # past it: lost rows
    os.utime(model / "loss.csv", (time.time() - 60, time.time() - 60))
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    (jobdir / T.TRAIN_TIME).write_text(json.dumps({"seconds": 3.0}))                       # an earlier run's

    def crash(cfg):
        time.sleep(1.3)                             # the stale file is seen (and ignored) first
        (model / "loss.csv").write_text("iteration,loss_a,loss_b,elapsed\n21,0.1,0.1,102.0\n22,0.1,0.1,105.5\n")
        time.sleep(1.6)
        raise RuntimeError("killed")
    fake_trainer.run = crash
    ctx = T.Ctx(jobdir=jobdir, report=lambda **kw: None)
    with pytest.raises(RuntimeError):
        T.run_train({"faces_a": "a", "faces_b": "b", "model_dir": str(model), "time_limit": 60}, ctx)
    assert fake_trainer.calls == [57.0]
    assert json.loads((jobdir / T.TRAIN_TIME).read_text())["seconds"] == pytest.approx(8.5)


def test_detect_routes(server):
    """The Detect page's reads: videos sorted into real ones and labelled swaps (labels beside, or a swap's
    out/), a detector's curves from its folder; confined to the work folder like every read."""
    wd = server.workdir
    for rel in ("detect/t/real.mp4", "detect/t/fake.mp4", "swaps/p/out/a_a2b.mp4"):
        (wd / rel).parent.mkdir(parents=True, exist_ok=True)
        (wd / rel).write_bytes(b"\x00")
    (wd / "detect/t/fake.labels").mkdir()
    (wd / "detect/t/fake.labels/labels.json").write_text("{}")
    st, v = server.request("/api/detect/videos")
    assert st == 200
    real, fake = {x["path"] for x in v["real"]}, {x["path"] for x in v["fake"]}
    assert "detect/t/real.mp4" in real and {"detect/t/fake.mp4", "swaps/p/out/a_a2b.mp4"} <= fake
    assert not real & fake
    det = wd / "detect/detectors/d"
    det.mkdir(parents=True)
    (det / "loss.csv").write_text("epoch,step,loss\n0,0,0.7\n0,1,0.65\n1,2,0.6\n")
    (det / "metrics.json").write_text(json.dumps({"history": [{"epoch": 0, "val_auc": 0.6}], "best_epoch": 0}))
    st, d = server.request("/api/detect/detector?path=detect%2Fdetectors%2Fd")
    assert st == 200 and d["steps"] == [[0, 0.7, 0], [1, 0.65, 0], [2, 0.6, 1]] and d["best_epoch"] == 0
    assert server.request("/api/detect/detector?path=..%2Foutside")[0] == 403
    assert server.request("/api/detect/detector?path=detect%2Fnope")[0] == 404

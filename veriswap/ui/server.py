"""The web app's HTTP side: a Starlette app (routes below), served by uvicorn. Every route is thin: it checks
the request against the security rules (security.py), then reads the work folder, or starts a job
(jobs.py -> tasks.py -> the library), or answers from a job's records. Progress reaches the page by
server-sent events (/api/events: the job list whenever it changes).

Routes (all need the token; see security.py):
  GET  /                        the app (static/index.html; sets the token cookie)
  GET  /static/NAME             its JS/CSS (shipped in the package: nothing from the internet)
  GET  /api/info                work folder, version, limits
  GET  /api/files?dir=&kind=    files in a folder of the work folder (video | image | pem | any)
  POST /api/upload?dir=&name=   raw body -> DIR/NAME (size-limited, name sanitised)
  GET  /api/file?path=[&download=1]   one file of the work folder (HTTP ranges for video)
  GET  /api/events              server-sent events: the job list
  GET/POST /api/jobs            list / start a job {kind, params, title?}
  GET  /api/jobs/ID, /api/jobs/ID/log, /api/jobs/ID/report  (report: the check's HTML page, sandboxed)
  POST /api/jobs/ID/{cancel,pause,stop,resume}
  GET/POST /api/projects, GET /api/projects/NAME, POST /api/projects/NAME/{extract,sort,train,convert}
  GET/POST /api/keys, GET /api/keys/NAME
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import mimetypes
import os
import re
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response,
                                 StreamingResponse)
from starlette.routing import Route

from . import tasks as T
from .jobs import JobManager, read_json, write_json
from .security import (DEFAULT_MAX_UPLOAD, HIDDEN, Refused, UploadWriter, Workdir, host_ok, request_token,
                       token_ok)

STATIC = Path(__file__).parent / "static"
VIDEO_EXT = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
KIND_EXT = {"video": VIDEO_EXT, "image": IMAGE_EXT, "media": VIDEO_EXT | IMAGE_EXT, "pem": {".pem", ".crt"},
            "key": {".key", ".pem", ".pub"}}
PRUNE = {"faces", "model", "masks", "rejected", "snapshots", "timelapse", "best", "backup"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "SAMEORIGIN",
    "cache-control": "no-store",
    # the app's own pages load only what the server itself serves: no CDN, no web font, no third party
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "style-src 'self' 'unsafe-inline'; frame-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'",
}
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
              "sandbox allow-scripts")


class AuthMiddleware:
    """Pure ASGI: the Host check and the token on every HTTP request (static files and uploads included)."""

    def __init__(self, app, token: str, hosts: List[str], cookie: str):
        self.app, self.token, self.hosts, self.cookie = app, token, hosts, cookie

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not host_ok(headers.get("host"), self.hosts):
            return await PlainTextResponse("refused: unexpected Host header", 403)(scope, receive, send)
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        cookies = {}
        if headers.get("cookie"):
            c = SimpleCookie()
            try:
                c.load(headers["cookie"])
            except Exception:  # noqa: BLE001 - a malformed cookie header is no token
                pass
            cookies = {k: m.value for k, m in c.items()}
        given, where = request_token(scope["method"], query, headers, cookies, self.cookie)
        if not token_ok(given, self.token):
            msg = ("veriswap ui: open the address printed when the server started (it carries the access token)."
                   if not given else "veriswap ui: wrong access token.")
            return await PlainTextResponse(msg, 403)(scope, receive, send)
        scope.setdefault("state", {})["token_from"] = where
        await self.app(scope, receive, send)


def _with_headers(resp: Response, extra: Optional[Dict[str, str]] = None) -> Response:
    for k, v in {**SECURITY_HEADERS, **(extra or {})}.items():
        resp.headers[k] = v
    return resp


def _err(e: Exception) -> JSONResponse:
    if isinstance(e, Refused):
        return JSONResponse({"error": str(e)}, e.status)
    if isinstance(e, KeyError):
        return JSONResponse({"error": f"not found: {e.args[0] if e.args else ''}"}, 404)
    return JSONResponse({"error": str(e) or type(e).__name__}, 400)


def create_app(workdir: Path, token: str, hosts: Optional[List[str]] = None, port: int = 0,
               max_upload: int = DEFAULT_MAX_UPLOAD) -> Starlette:
    wd = Workdir(workdir)
    jobs = JobManager(wd.root)
    cookie = f"veriswap_token_{port}"
    hosts = hosts or ["127.0.0.1", "localhost", "::1"]

    # -- helpers --------------------------------------------------------------------------------
    async def body_json(request: Request) -> Dict[str, Any]:
        try:
            d = json.loads(await request.body() or b"{}")
        except ValueError:
            raise Refused("the request body is not JSON") from None
        if not isinstance(d, dict):
            raise Refused("the request body must be a JSON object")
        return d

    def check_paths(kind: str, params: Dict[str, Any]) -> Dict[str, Any]:
        """Every path parameter inside the work folder (inputs must exist), as a clean relative path."""
        task = T.TASKS.get(kind)
        if task is None:
            raise Refused(f"unknown job kind {kind!r}")
        out = dict(params)
        for key in task.inputs + task.outputs:
            v = params.get(key)
            if v in (None, "", []):
                continue
            vals = v if isinstance(v, list) else [v]
            clean = [wd.rel(wd.resolve(str(x), must_exist=key in task.inputs)) for x in vals]
            out[key] = clean if isinstance(v, list) else clean[0]
        for key, v in params.items():    # any other string that looks like a path must not escape either
            if key not in task.inputs + task.outputs and isinstance(v, str) and ("/" in v or "\\" in v or v.startswith("..")):
                raise Refused(f"refused: parameter {key!r} may not be a path")
        return out

    def start(kind: str, params: Dict[str, Any], title: Optional[str] = None, project: Optional[str] = None):
        params = check_paths(kind, params)
        return jobs.create(kind, params, title or T.TASKS[kind].title, project)

    def list_files(folder: Path, exts: Optional[set], recursive: bool = True, limit: int = 2000,
                   prune: bool = False) -> List[Dict[str, Any]]:
        """Plain files under `folder` (never through a symlink, never hidden ones). `prune`: skip the stages' own
        working folders (face crops, model, masks, datasets), so a list of videos is the user's videos and outputs."""
        out = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not os.path.islink(os.path.join(dirpath, d))
                                 and not d.endswith(".parts")
                                 and not (prune and (d in PRUNE or d.endswith(".labels")
                                                     or os.path.join(dirpath, d) == str(wd.root / "detect" / "datasets"))))
            for f in sorted(filenames):
                p = Path(dirpath) / f
                if f.startswith(".") or p.is_symlink() or (exts and p.suffix.lower() not in exts):
                    continue
                st = p.stat()
                out.append({"path": wd.rel(p), "name": f, "size": st.st_size, "mtime": st.st_mtime})
                if len(out) >= limit:
                    return out
            if not recursive:
                break
        return out

    # -- pages ----------------------------------------------------------------------------------
    async def index(request: Request):
        html = (STATIC / "index.html").read_text().replace("{{TOKEN}}", token)
        resp = _with_headers(HTMLResponse(html))
        resp.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
        return resp

    async def static(request: Request):
        name = request.path_params["name"]
        p = STATIC / name
        if "/" in name or name.startswith(".") or not p.is_file():
            return PlainTextResponse("not found", 404)
        return _with_headers(FileResponse(p, media_type=mimetypes.guess_type(name)[0] or "application/octet-stream"),
                             {"cache-control": "no-cache"})

    async def info(request: Request):
        from veriswap import __version__
        return JSONResponse({"workdir": str(wd.root), "version": __version__, "max_upload": max_upload})

    async def files(request: Request):
        try:
            rel = request.query_params.get("dir", "")
            folder = wd.resolve(rel)
            if not folder.is_dir():
                return JSONResponse({"files": []})
            kind = request.query_params.get("kind", "any")
            return JSONResponse({"files": list_files(folder, KIND_EXT.get(kind), prune=kind in ("video", "image", "media"))})
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def upload(request: Request):
        try:
            q = request.query_params
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > max_upload:
                raise Refused(f"refused: the upload is larger than the limit ({max_upload:,} bytes)", 413)
            w = UploadWriter(wd, q.get("dir") or T.UPLOADS, q.get("name", ""), max_upload)
            try:
                async for chunk in request.stream():
                    w.write(chunk)
            except Refused:
                raise
            except BaseException:
                w.abort()
                raise
            dest = w.finish()
            return JSONResponse({"path": wd.rel(dest), "size": w.size})
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def file(request: Request):
        try:
            p = wd.resolve(request.query_params.get("path", ""), must_exist=True)
            if not p.is_file():
                raise Refused("not a file", 404)
            name = p.name
            mt = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if request.query_params.get("download"):
                return _with_headers(FileResponse(p, media_type=mt, filename=name))
            if mt in ("text/html", "image/svg+xml", "application/xhtml+xml"):
                mt = "text/plain"          # never render the work folder's HTML/SVG in the app's origin
            return _with_headers(FileResponse(p, media_type=mt, content_disposition_type="inline"))
        except Exception as e:  # noqa: BLE001
            return _err(e)

    # -- jobs -----------------------------------------------------------------------------------
    async def jobs_list(request: Request):
        return JSONResponse({"jobs": jobs.list()})

    async def jobs_create(request: Request):
        try:
            d = await body_json(request)
            params = d.get("params") or {}
            if d.get("kind") == "check":
                params.setdefault("trust_anchors", [k["anchor"] for k in keys_info() if k.get("anchor")])
            return JSONResponse(start(str(d.get("kind")), params, d.get("title"), d.get("project")))
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def job_get(request: Request):
        try:
            return JSONResponse(jobs.get(request.path_params["id"]))
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def job_action(request: Request):
        try:
            return JSONResponse(jobs.request(request.path_params["id"], request.path_params["action"]))
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def job_log(request: Request):
        try:
            p = jobs.jobdir(request.path_params["id"]) / "log.txt"
            data = p.read_bytes()[-200_000:] if p.is_file() else b""
            return _with_headers(PlainTextResponse(data.decode("utf-8", "replace")))
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def job_report(request: Request):
        try:
            p = jobs.jobdir(request.path_params["id"]) / "report.html"
            if not p.is_file():
                raise Refused("no report (yet)", 404)
            # the check's own self-contained page, sandboxed: it may run its inline sorting script, nothing else
            return _with_headers(HTMLResponse(p.read_text()), {"content-security-policy": REPORT_CSP})
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def events(request: Request):
        async def gen():
            last, n = None, 0
            while True:
                if await request.is_disconnected():
                    break
                data = json.dumps({"jobs": jobs.list(60)}, default=str)
                h = hashlib.sha1(data.encode()).hexdigest()
                if h != last:
                    last = h
                    yield f"event: jobs\ndata: {data}\n\n"
                elif n % 15 == 0:
                    yield ": keep-alive\n\n"
                n += 1
                await asyncio.sleep(0.5)
        return StreamingResponse(gen(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    # -- swap projects --------------------------------------------------------------------------
    def project_name(request: Request) -> str:
        name = request.path_params["name"]
        if not NAME_RE.match(name):
            raise Refused(f"refused: bad project name {name!r}")
        return name

    def load_project(name: str) -> Dict[str, Any]:
        p = wd.resolve(f"{T.SWAPS}/{name}/project.json")
        d = read_json(p)
        if d is None:
            raise KeyError(name)
        return d

    def faces_info(rel: str, limit: int = 80) -> Dict[str, Any]:
        folder = wd.resolve(rel)
        if not folder.is_dir():
            return {"count": 0, "faces": [], "rejected": 0}
        doc = read_json(folder / "sort.json") or {}
        entries = doc.get("faces") or {}
        top = [f["name"] for f in list_files(folder, IMAGE_EXT, recursive=False)]
        rej_dir = folder / "rejected"
        rejected = [f["name"] for f in list_files(rej_dir, IMAGE_EXT, recursive=False)] if rej_dir.is_dir() else []
        order = [n for n in doc.get("ranking", []) if n in set(top)] or top
        seen = set(order)
        order += [n for n in top if n not in seen]
        show = order[:limit]

        def one(n: str, where: str) -> Dict[str, Any]:
            e = entries.get(n) or {}
            return {"file": n, "path": f"{rel}/{n}" if where == "top" else f"{rel}/rejected/{n}", "in": where,
                    "identity": e.get("identity"), "blur": e.get("blur"), "reject": e.get("reject") or {}}
        return {"count": len(top), "rejected": len(rejected), "shown": len(show),
                "faces": [one(n, "top") for n in show] + [one(n, "rejected") for n in rejected[:24]],
                "sorted": bool(doc), "counts": doc.get("counts")}

    def project_view(name: str) -> Dict[str, Any]:
        proj = load_project(name)
        P = T.project_paths(name)
        model = wd.resolve(P["model"])
        state = read_json(model / "state.json") or {}
        rows = T.read_loss_csv(model / "loss.csv", 300)
        outs = []
        out_dir = wd.resolve(P["out"])
        if out_dir.is_dir():
            for f in sorted(out_dir.glob("*.mp4")):
                if f.is_symlink() or f.name.startswith("."):
                    continue
                labels = f.with_name(f.stem + ".labels") / "labels.json"
                manifest = f.with_name(f.stem + ".manifest.json")
                lab = read_json(labels) or {}
                src = lab.get("source")
                src = src.get("path") if isinstance(src, dict) else src
                if isinstance(src, str) and not os.path.isabs(src):
                    src = str(wd.root / src)
                outs.append({"video": wd.rel(f), "labels": wd.rel(labels) if labels.is_file() else None,
                             "manifest": wd.rel(manifest) if manifest.is_file() else None,
                             "source": wd.rel(Path(os.path.realpath(src))) if isinstance(src, str) and _inside(wd, src)
                             and Path(src).is_file() else None,
                             "size": f.stat().st_size, "mtime": f.stat().st_mtime})
        preview = model / "preview.png"
        return {"project": proj, "paths": P,
                "faces": {"a": faces_info(P["faces_a"]), "b": faces_info(P["faces_b"])},
                "model": {"exists": (model / "state.json").is_file(), "iteration": state.get("iteration"),
                          "elapsed": state.get("elapsed"), "loss": rows, "its": T.train_speed(rows),
                          "preview": wd.rel(preview) if preview.is_file() else None,
                          "preview_mtime": preview.stat().st_mtime if preview.is_file() else None,
                          "identity_checks": (state.get("identity_checks") or [])[-1:]},
                "outputs": outs,
                "jobs": [j for j in jobs.list() if j.get("project") == name]}

    async def projects_list(request: Request):
        root = wd.resolve(T.SWAPS)
        names = sorted(p.parent.name for p in root.glob("*/project.json")) if root.is_dir() else []
        return JSONResponse({"projects": names})

    async def projects_create(request: Request):
        try:
            d = await body_json(request)
            name = str(d.get("name") or "").strip()
            if not NAME_RE.match(name):
                raise Refused("a swap's name: letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit")
            P = T.project_paths(name)
            if wd.resolve(f"{P['base']}/project.json").exists():
                raise Refused(f"a swap named {name!r} exists already", 409)
            wd.folder(P["inputs"])
            job = None
            if d.get("samples"):
                proj = {"name": name, "a": [f"{P['inputs']}/astronaut.mp4"], "b": [f"{P['inputs']}/grace_hopper.mp4"],
                        "ref_a": f"{P['inputs']}/astronaut_reference.png", "ref_b": None, "samples": True}
                job = start("samples", {"folder": P["inputs"], "frames": int(d.get("frames") or 50)},
                            "built-in sample faces", name)
            else:
                def clean(v, must=True):
                    return wd.rel(wd.resolve(str(v), must_exist=must)) if v else None
                a, b = [clean(x) for x in d.get("a") or []], [clean(x) for x in d.get("b") or []]
                if not a or not b:
                    raise Refused("choose at least one video (or photo folder) for each person")
                proj = {"name": name, "a": a, "b": b, "ref_a": clean(d.get("ref_a")), "ref_b": clean(d.get("ref_b")),
                        "samples": False}
            write_json(wd.resolve(f"{P['base']}/project.json"), proj)
            return JSONResponse({"project": proj, "job": job})
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def project_get(request: Request):
        try:
            return JSONResponse(project_view(project_name(request)))
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def project_step(request: Request):
        try:
            name = project_name(request)
            step = request.path_params["step"]
            proj = load_project(name)
            P = T.project_paths(name)
            d = await body_json(request)
            if step == "extract":
                params = {"a": proj["a"], "b": proj["b"], "ref_a": proj.get("ref_a"), "ref_b": proj.get("ref_b"),
                          "faces_a": P["faces_a"], "faces_b": P["faces_b"], "size": int(d.get("size") or 256),
                          "every": int(d.get("every") or 1)}
                job = start("extract", params, "extract faces", name)
            elif step == "sort":
                person = d.get("person")
                if person not in ("a", "b"):
                    raise Refused("person must be 'a' or 'b'")
                params = {"faces_dir": P[f"faces_{person}"], "restore": bool(d.get("restore")),
                          "max_distance": d.get("max_distance"), "reject_blur": d.get("reject_blur"), "keep": d.get("keep")}
                job = start("sort", params, f"sort and clean {person.upper()}", name)
            elif step == "train":
                params = {"faces_a": P["faces_a"], "faces_b": P["faces_b"], "model_dir": P["model"],
                          "time_limit": float(d["time_limit"]) if d.get("time_limit") else None,
                          "iterations": int(d["iterations"]) if d.get("iterations") else None,
                          "batch_size": int(d.get("batch_size") or 8), "preview_every": int(d.get("preview_every") or 10),
                          "save_every": int(d.get("save_every") or 100)}
                if not params["time_limit"] and not params["iterations"]:
                    raise Refused("give a time limit or a number of iterations")
                job = start("train", params, "train", name)
            elif step == "convert":
                direction = d.get("direction") or "a2b"
                if direction not in ("a2b", "b2a"):
                    raise Refused("direction must be a2b or b2a")
                video = d.get("video") or (proj["a"] if direction == "a2b" else proj["b"])[0]
                aln = P["faces_a"] if direction == "a2b" else P["faces_b"]
                src = wd.resolve(video, must_exist=True)
                key = d.get("key") or default_key()
                params = {"video": wd.rel(src), "model_dir": P["model"], "direction": direction,
                          "out": f"{P['out']}/{src.stem}_{direction}.mp4", "key_dir": key,
                          "alignments": f"{aln}/alignments.json"
                          if wd.resolve(f"{aln}/alignments.json").is_file() and video in (proj["a"] + proj["b"]) else None}
                job = start("convert", params, f"convert {src.name} ({direction})", name)
            else:
                raise Refused(f"unknown step {step!r}", 404)
            return JSONResponse(job)
        except Exception as e:  # noqa: BLE001
            return _err(e)

    # -- keys -----------------------------------------------------------------------------------
    def keys_info() -> List[Dict[str, Any]]:
        root = wd.resolve(T.KEYS)
        out = []
        if not root.is_dir():
            return out
        for d in sorted(root.iterdir()):
            if d.is_symlink() or not d.is_dir() or not (d / "signer.pem").is_file():
                continue
            out.append(key_public(d))
        return out

    def key_public(d: Path) -> Dict[str, Any]:
        """The public parts only: certificates, fingerprints, public key. Never a private key's bytes."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        def cert_info(p: Path) -> Optional[Dict[str, Any]]:
            if not p.is_file():
                return None
            c = x509.load_pem_x509_certificate(p.read_bytes())
            raw = c.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string(),
                    "serial": str(c.serial_number), "not_before": c.not_valid_before_utc.isoformat(),
                    "not_after": c.not_valid_after_utc.isoformat(),
                    "sha256": c.fingerprint(hashes.SHA256()).hex(":").upper(), "public_key": raw.hex(),
                    "pem": wd.rel(p)}
        from provenance.keys import key_is_encrypted
        return {"name": d.name, "dir": wd.rel(d), "root": cert_info(d / "root.pem"), "signer": cert_info(d / "signer.pem"),
                "anchor": wd.rel(d / "root.pem") if (d / "root.pem").is_file() else None,
                "encrypted": key_is_encrypted(d / "signer.key"), "has_tag_key": (d / "tag.key").is_file()}

    def default_key() -> str:
        ks = keys_info()
        if ks:
            return ks[0]["dir"]
        from provenance.keys import generate_identity
        d = wd.resolve(f"{T.KEYS}/local")
        generate_identity(d, name="veriswap local")
        return wd.rel(d)

    async def keys_list(request: Request):
        try:
            return JSONResponse({"keys": keys_info()})
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def keys_create(request: Request):
        try:
            from provenance.keys import generate_identity
            d = await body_json(request)
            name = str(d.get("name") or "").strip()
            if not NAME_RE.match(name):
                raise Refused("a key's folder name: letters, digits, '.', '_' or '-', starting with a letter or digit")
            org = str(d.get("org") or "veriswap local").strip()
            wd.folder(T.KEYS)
            target = wd.resolve(f"{T.KEYS}/{name}")
            if target.exists():
                raise Refused(f"keys/{name} exists already: keys are never overwritten here", 409)
            generate_identity(target, name=org)
            return JSONResponse(key_public(target))
        except Exception as e:  # noqa: BLE001
            return _err(e)

    async def key_get(request: Request):
        try:
            name = project_name(request)
            d = wd.resolve(f"{T.KEYS}/{name}", must_exist=True)
            return JSONResponse(key_public(d))
        except Exception as e:  # noqa: BLE001
            return _err(e)

    routes = [
        Route("/", index), Route("/static/{name}", static),
        Route("/api/info", info), Route("/api/files", files), Route("/api/upload", upload, methods=["POST", "PUT"]),
        Route("/api/file", file), Route("/api/events", events),
        Route("/api/jobs", jobs_list, methods=["GET"]), Route("/api/jobs", jobs_create, methods=["POST"]),
        Route("/api/jobs/{id}", job_get), Route("/api/jobs/{id}/log", job_log), Route("/api/jobs/{id}/report", job_report),
        Route("/api/jobs/{id}/{action}", job_action, methods=["POST"]),
        Route("/api/projects", projects_list, methods=["GET"]), Route("/api/projects", projects_create, methods=["POST"]),
        Route("/api/projects/{name}", project_get), Route("/api/projects/{name}/{step}", project_step, methods=["POST"]),
        Route("/api/keys", keys_list, methods=["GET"]), Route("/api/keys", keys_create, methods=["POST"]),
        Route("/api/keys/{name}", key_get),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.get_running_loop().run_in_executor(None, jobs.stop_all)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.jobs, app.state.workdir = jobs, wd
    return AuthMiddleware(app, token, hosts, cookie)


def _inside(wd: Workdir, path: str) -> bool:
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return False
    return real == wd.root or wd.root in real.parents


def serve(workdir: Path, host: str = "127.0.0.1", port: int = 0, token: Optional[str] = None,
          max_upload: int = DEFAULT_MAX_UPLOAD, on_ready=None, open_browser: bool = False) -> None:
    """Run the app until Ctrl-C. Port 0 picks a free port. `on_ready(url)` is called with the address
    (token included) once the server listens."""
    import socket

    import uvicorn

    from .security import new_token

    token = token or new_token()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    if host in ("0.0.0.0", "::"):
        hosts = ["*"]
    else:
        hosts = sorted({host, "127.0.0.1", "localhost", "::1"} if host in ("127.0.0.1", "localhost", "::1") else {host})
    app = create_app(Path(workdir), token, hosts, port, max_upload)
    shown = host if ":" not in host else f"[{host}]"
    url = f"http://{shown if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}/?token={token}"
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, access_log=False)
    server = uvicorn.Server(config)

    async def run():
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            if on_ready:
                on_ready(url)
            if open_browser:
                import webbrowser
                webbrowser.open(url)
        await task
    asyncio.run(run())

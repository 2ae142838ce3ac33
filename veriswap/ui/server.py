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
  GET  /api/detect/videos, /api/detect/detector?path=   (routes_detect.py)

Long function: `create_app` is the list of these routes, each a short closure over the app's state.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import mimetypes
import os
import sys
from http.cookies import SimpleCookie
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response,
                                 StreamingResponse)
from starlette.routing import Route

from . import tasks as T
from .jobs import JobManager
from .routes_detect import detect_routes
from .routes_swap import swap_routes
from .security import (DEFAULT_MAX_UPLOAD, Refused, UploadWriter, Workdir, host_ok, request_token,
                       token_ok)
from .workfolder import KIND_EXT, default_key, keys_info, list_files

STATIC = Path(__file__).parent / "static"
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
            return JSONResponse({"files": list_files(wd, folder, KIND_EXT.get(kind), prune=kind in ("video", "image", "media"))})
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
                params.setdefault("trust_anchors", [k["anchor"] for k in keys_info(wd) if k.get("anchor")])
            if d.get("kind") == "detect_samples":      # the practice swaps are signed, as every generated video
                params["key_dir"] = params.get("key_dir") or default_key(wd)
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

    routes = [
        Route("/", index), Route("/static/{name}", static),
        Route("/api/info", info), Route("/api/files", files), Route("/api/upload", upload, methods=["POST", "PUT"]),
        Route("/api/file", file), Route("/api/events", events),
        Route("/api/jobs", jobs_list, methods=["GET"]), Route("/api/jobs", jobs_create, methods=["POST"]),
        Route("/api/jobs/{id}", job_get), Route("/api/jobs/{id}/log", job_log), Route("/api/jobs/{id}/report", job_report),
        Route("/api/jobs/{id}/{action}", job_action, methods=["POST"]),
    ] + swap_routes(SimpleNamespace(wd=wd, jobs=jobs, start=start, body_json=body_json, err=_err)) \
      + detect_routes(SimpleNamespace(wd=wd, err=_err))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.get_running_loop().run_in_executor(None, jobs.stop_all)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.jobs, app.state.workdir = jobs, wd
    return AuthMiddleware(app, token, hosts, cookie)


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
    try:
        sock.bind((host, port))
    except OSError as e:
        from swap.errors import InputError
        sock.close()
        why = "is in use (another veriswap ui?): choose another with --port N, or --port 0 for any free one" \
            if e.errno in (98, 48, 10048) else f"cannot be opened: {e.strerror or e}"
        raise InputError(f"port {port} on {host} {why}") from None
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
            if open_browser and (sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY")
                                 or os.environ.get("WAYLAND_DISPLAY")):
                import webbrowser     # only with a desktop: never a text browser taking over the terminal
                webbrowser.open(url)
        await task
    asyncio.run(run())

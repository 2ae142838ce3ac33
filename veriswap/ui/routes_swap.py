"""The web app's Swap and Keys routes: swap projects (create from uploads or the built-in faces, their state,
and the four steps, each started as a job) and signing identities (list, create; public parts only).
Mounted by server.create_app, which hands over the work folder, the job manager and its helpers (`c`).

Long function: `swap_routes` is the list of these routes, each a short closure over what it is handed.
"""
from __future__ import annotations

from typing import Any, List

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import tasks as T
from .jobs import write_json
from .security import Refused
from .workfolder import NAME_RE, default_key, key_public, keys_info, load_project, project_view


def swap_routes(c: Any) -> List[Route]:
    """c: wd (Workdir), jobs (JobManager), start(kind, params, title, project), body_json(request), err(e)."""
    # -- swap projects --------------------------------------------------------------------------
    def project_name(request: Request) -> str:
        name = request.path_params["name"]
        if not NAME_RE.match(name):
            raise Refused(f"refused: bad project name {name!r}")
        return name

    async def projects_list(request: Request):
        root = c.wd.resolve(T.SWAPS)
        names = sorted(p.parent.name for p in root.glob("*/project.json")) if root.is_dir() else []
        return JSONResponse({"projects": names})

    async def projects_create(request: Request):
        try:
            d = await c.body_json(request)
            name = str(d.get("name") or "").strip()
            if not NAME_RE.match(name):
                raise Refused("a swap's name: letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit")
            P = T.project_paths(name)
            if c.wd.resolve(f"{P['base']}/project.json").exists():
                raise Refused(f"a swap named {name!r} exists already", 409)
            c.wd.folder(P["inputs"])
            job = None
            if d.get("samples"):
                proj = {"name": name, "a": [f"{P['inputs']}/astronaut.mp4"], "b": [f"{P['inputs']}/grace_hopper.mp4"],
                        "ref_a": f"{P['inputs']}/astronaut_reference.png", "ref_b": None, "samples": True}
                job = c.start("samples", {"folder": P["inputs"], "frames": int(d.get("frames") or 50)},
                            "built-in sample faces", name)
            else:
                def clean(v, must=True):
                    return c.wd.rel(c.wd.resolve(str(v), must_exist=must)) if v else None
                a, b = [clean(x) for x in d.get("a") or []], [clean(x) for x in d.get("b") or []]
                if not a or not b:
                    raise Refused("choose at least one video (or photo folder) for each person")
                proj = {"name": name, "a": a, "b": b, "ref_a": clean(d.get("ref_a")), "ref_b": clean(d.get("ref_b")),
                        "samples": False}
            write_json(c.wd.resolve(f"{P['base']}/project.json"), proj)
            return JSONResponse({"project": proj, "job": job})
        except Exception as e:  # noqa: BLE001
            return c.err(e)

    async def project_get(request: Request):
        try:
            return JSONResponse(project_view(c.wd, c.jobs, project_name(request)))
        except Exception as e:  # noqa: BLE001
            return c.err(e)

    async def project_step(request: Request):
        try:
            name = project_name(request)
            step = request.path_params["step"]
            proj = load_project(c.wd, name)
            P = T.project_paths(name)
            d = await c.body_json(request)
            if step == "extract":
                params = {"a": proj["a"], "b": proj["b"], "ref_a": proj.get("ref_a"), "ref_b": proj.get("ref_b"),
                          "faces_a": P["faces_a"], "faces_b": P["faces_b"], "size": int(d.get("size") or 256),
                          "every": int(d.get("every") or 1)}
                job = c.start("extract", params, "extract faces", name)
            elif step == "sort":
                person = d.get("person")
                if person not in ("a", "b"):
                    raise Refused("person must be 'a' or 'b'")
                params = {"faces_dir": P[f"faces_{person}"], "restore": bool(d.get("restore")),
                          "max_distance": d.get("max_distance"), "reject_blur": d.get("reject_blur"), "keep": d.get("keep")}
                job = c.start("sort", params, f"sort and clean {person.upper()}", name)
            elif step == "train":
                params = {"faces_a": P["faces_a"], "faces_b": P["faces_b"], "model_dir": P["model"],
                          "time_limit": float(d["time_limit"]) if d.get("time_limit") else None,
                          "iterations": int(d["iterations"]) if d.get("iterations") else None,
                          "batch_size": int(d.get("batch_size") or 8), "preview_every": int(d.get("preview_every") or 10),
                          "save_every": int(d.get("save_every") or 100)}
                if not params["time_limit"] and not params["iterations"]:
                    raise Refused("give a time limit or a number of iterations")
                job = c.start("train", params, "train", name)
            elif step == "convert":
                direction = d.get("direction") or "a2b"
                if direction not in ("a2b", "b2a"):
                    raise Refused("direction must be a2b or b2a")
                video = d.get("video") or (proj["a"] if direction == "a2b" else proj["b"])[0]
                aln = P["faces_a"] if direction == "a2b" else P["faces_b"]
                src = c.wd.resolve(video, must_exist=True)
                key = d.get("key") or default_key(c.wd)
                params = {"video": c.wd.rel(src), "model_dir": P["model"], "direction": direction,
                          "out": f"{P['out']}/{src.stem}_{direction}.mp4", "key_dir": key,
                          "alignments": f"{aln}/alignments.json"
                          if c.wd.resolve(f"{aln}/alignments.json").is_file() and video in (proj["a"] + proj["b"]) else None}
                job = c.start("convert", params, f"convert {src.name} ({direction})", name)
            else:
                raise Refused(f"unknown step {step!r}", 404)
            return JSONResponse(job)
        except Exception as e:  # noqa: BLE001
            return c.err(e)

    # -- keys -----------------------------------------------------------------------------------
    async def keys_list(request: Request):
        try:
            return JSONResponse({"keys": keys_info(c.wd)})
        except Exception as e:  # noqa: BLE001
            return c.err(e)

    async def keys_create(request: Request):
        try:
            from provenance.keys import generate_identity
            d = await c.body_json(request)
            name = str(d.get("name") or "").strip()
            if not NAME_RE.match(name):
                raise Refused("a key's folder name: letters, digits, '.', '_' or '-', starting with a letter or digit")
            org = str(d.get("org") or "veriswap local").strip()
            c.wd.folder(T.KEYS)
            target = c.wd.resolve(f"{T.KEYS}/{name}")
            if target.exists():
                raise Refused(f"keys/{name} exists already: keys are never overwritten here", 409)
            generate_identity(target, name=org)
            return JSONResponse(key_public(c.wd, target))
        except Exception as e:  # noqa: BLE001
            return c.err(e)

    async def key_get(request: Request):
        try:
            name = project_name(request)
            d = c.wd.resolve(f"{T.KEYS}/{name}", must_exist=True)
            return JSONResponse(key_public(c.wd, d))
        except Exception as e:  # noqa: BLE001
            return c.err(e)

    return [
        Route("/api/projects", projects_list, methods=["GET"]), Route("/api/projects", projects_create, methods=["POST"]),
        Route("/api/projects/{name}", project_get), Route("/api/projects/{name}/{step}", project_step, methods=["POST"]),
        Route("/api/keys", keys_list, methods=["GET"]), Route("/api/keys", keys_create, methods=["POST"]),
        Route("/api/keys/{name}", key_get),
    ]

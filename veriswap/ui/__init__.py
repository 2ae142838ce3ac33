"""`veriswap ui`: the local web app over the whole toolkit, for people who do not use terminals.

Swap (two videos or the built-in faces -> extract + sort -> train with a live preview -> convert, signed),
Check (one verdict per file, the same report as `veriswap check --html`), Detect (dataset, train, evaluate)
and Keys (create, public parts, trust anchor). Every action is a call of the same library API the CLI uses,
run as a background job (jobs.py, worker.py, tasks.py); the HTTP side (server.py) is Starlette + uvicorn
with plain HTML/JS/CSS shipped in static/. Security rules: security.py. Docs: docs/ui.md.

    from veriswap.ui import serve
    serve("work", port=8765)          # prints nothing; `veriswap ui` prints the address with its token
"""
from __future__ import annotations

__all__ = ["create_app", "serve"]


def __getattr__(name: str):
    if name in __all__:
        from . import server
        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

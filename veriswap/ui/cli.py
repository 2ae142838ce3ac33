"""`veriswap ui`: start the local web app (imports nothing heavy until it runs)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def ui_command(
    port: int = typer.Option(8765, "--port", help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Only this machine by default; "
                             "another address lets other machines in (they still need the token)."),
    workdir: Path = typer.Option(Path("veriswap-work"), "--workdir", help="The one folder the app reads and writes "
                                 "(uploads, swaps, keys, detectors, job records). Created if missing."),
    max_upload_mb: int = typer.Option(2048, "--max-upload-mb", help="Largest upload accepted, in MiB."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    token: Optional[str] = typer.Option(None, "--token", envvar="VERISWAP_UI_TOKEN", hidden=True,
                                        help="Use this access token instead of a random one (tests)."),
) -> None:
    """Start the local web app: swap, check, detect and keys in a browser, no terminal needed."""
    try:
        from .server import serve
    except ModuleNotFoundError as e:
        from swap.errors import InputError
        raise InputError(f"veriswap ui needs the Python package {e.name!r}: pip install starlette uvicorn") from None
    if max_upload_mb < 1:
        from swap.errors import InputError
        raise InputError("--max-upload-mb must be >= 1")

    def ready(url: str) -> None:
        typer.echo(f"veriswap ui: work folder {workdir.resolve()}")
        typer.echo("Open this address in a browser (it carries the access token; keep it private):")
        typer.echo(f"    {url}", err=False)
        typer.echo("Stop with Ctrl-C (running jobs are stopped and can be resumed later).")
    serve(workdir, host=host, port=port, token=token, max_upload=max_upload_mb * 1024 ** 2, on_ready=ready,
          open_browser=open_browser)

"""The `veriswap` command: a thin typer layer over the library.

Sub-apps (`provenance`, `detect`) are registered by module path so that `swap` never imports
`detect` at import time (detect depends on swap, not the reverse) and `provenance` commands
start without importing torch.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="veriswap",
    help="Face-swap toolkit for research, with provenance and detection built in.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# name -> "module:attribute" of a typer.Typer; missing modules are skipped (feature not built yet)
SUBAPPS = {
    "provenance": "provenance.cli:app",
    "detect": "detect.cli:app",
}

_DEBUG = {"on": bool(os.environ.get("VERISWAP_DEBUG"))}


def _version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "not installed"
    # the versions a bug report needs, read from package metadata (nothing heavy is imported)
    typer.echo(f"veriswap {__version__} (python {sys.version.split()[0]}; "
               + ", ".join(f"{p} {v(p)}" for p in ("torch", "timm", "av", "dlib-bin", "c2pa-python", "cryptography"))
               + ")")
    raise typer.Exit(0)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
          show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                            help="Print the version (and its main dependencies') and exit.")) -> None:
    if debug:
        _DEBUG["on"] = True


def _register_subapps() -> None:
    for name, target in SUBAPPS.items():
        mod_name, attr = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == mod_name or mod_name.startswith(e.name + ".")):
                continue
            _register_unavailable(name, e.name or str(e))   # a partial install (say a GPU box that only trains)
            continue
        app.add_typer(getattr(mod, attr), name=name)


def _register_unavailable(name: str, package: str) -> None:
    """`veriswap NAME ...` says in one line which package it lacks, instead of the whole CLI failing."""
    @app.command(name, help=f"(unavailable here: needs the Python package {package!r})", add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _unavailable(ctx: typer.Context) -> None:
        from .errors import InputError
        raise InputError(f"veriswap {name} needs the Python package {package!r}, which is not installed here")


def _register_stage_commands() -> None:
    # Each stage's CLI module adds its commands to `app`; imported here so they stay small.
    for mod_name in ("swap.extract_cli", "swap.sort_cli", "swap.train_cli", "swap.model_cli", "swap.convert_cli",
                     "swap.demo_cli"):     # the order `veriswap --help` lists them: the pipeline's
        try:
            importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name == mod_name:
                continue
            raise


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error and exit (used by CLI modules for usage problems)."""
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(code)


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point: maps exceptions to one-line errors and exit codes."""
    import click

    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:       # accepted anywhere on the line, not only before the command
        _DEBUG["on"] = True
        args = [a for a in args if a != "--debug"]
    # OpenCV logs decoder complaints ('[ERROR:0@0.03] ... IHDR chunk') to stderr on its own;
    # the CLI reports unreadable files itself, in one line. Set before cv2 is imported.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    _register_stage_commands()
    _register_subapps()
    try:
        rv = app(args=args, standalone_mode=False, prog_name="veriswap")
        code = rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        e.show()
        code = 2
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        code = 130
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    except Exception as e:  # noqa: BLE001 - the single place that turns errors into exit codes
        if _DEBUG["on"]:
            raise
        code = getattr(e, "exit_code", None)
        if code is None:
            code = 2 if isinstance(e, (OSError, ValueError)) else 1
        msg = str(e) or type(e).__name__
        if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
            msg = f"{msg}: {e.filename}"
        typer.secho(f"error: {msg.splitlines()[0]}", err=True, fg="red")
        if code == 1:
            typer.echo("(run with --debug for the traceback)", err=True)
    sys.exit(code)


def existing_paths(paths: List[Path]) -> List[Path]:
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}")
    return paths


if __name__ == "__main__":
    main()

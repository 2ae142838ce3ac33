"""The `veriswap` command: the root typer app, a thin layer over the library.

It mounts the swap stages' commands (each stage's CLI module sits beside its library code, e.g.
swap/extract/cli.py) in pipeline order, `graphic-swap` (the graphics-based swap), `check`, the demo, and
the `detect` and `provenance` groups, all by plain imports: those modules import typer and nothing heavy
at module level, so `veriswap --help` stays fast
and the provenance commands run without torch. `main()` is the one place that turns errors into exit
codes (DESIGN.md: 0 success, 1 a check failed, 2 bad input or usage as one line, unless --debug).
"""
from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer

from detect.cli import app as detect_app
from swap.convert.cli import convert_command
from swap.extract.cli import extract_command
from swap.graphic.cli import graphic_swap_command
from swap.models.cli import model_command
from swap.sort.cli import sort_command
from swap.train.cli import train_command

from .check.cli import check as check_command
from .demo.cli import demo_command
from .ui.cli import ui_command

try:    # a partial install (a GPU box that only trains) lacks cryptography / c2pa: the rest still works
    from provenance.cli import app as provenance_app
    _PROVENANCE_MISSING = None
except ModuleNotFoundError as e:
    provenance_app, _PROVENANCE_MISSING = None, e.name or str(e)

app = typer.Typer(
    name="veriswap",
    help="Face-swap toolkit for research, with provenance and detection built in.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

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


# the order `veriswap --help` lists them: the pipeline's
app.command("extract")(extract_command)
app.command("sort")(sort_command)
app.command("train")(train_command)
app.command("model")(model_command)
app.command("convert")(convert_command)
app.command("graphic-swap")(graphic_swap_command)
app.command("demo")(demo_command)
app.command("check")(check_command)
app.command("ui")(ui_command)


def _register_unavailable(name: str, package: str) -> None:
    """`veriswap NAME ...` says in one line which package it lacks, instead of the whole CLI failing."""
    @app.command(name, help=f"(unavailable here: needs the Python package {package!r})", add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _unavailable(ctx: typer.Context) -> None:
        from swap.errors import InputError
        raise InputError(f"veriswap {name} needs the Python package {package!r}, which is not installed here")


if provenance_app is not None:
    app.add_typer(provenance_app, name="provenance")
else:
    _register_unavailable("provenance", _PROVENANCE_MISSING)
app.add_typer(detect_app, name="detect")


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
        code = _report(e)
    sys.exit(code)


def _report(e: Exception) -> int:
    """One red line for an error; its exit code (VeriswapError's `exit_code`; OSError/ValueError 2; else 1)."""
    code = getattr(e, "exit_code", None)
    if code is None:
        code = 2 if isinstance(e, (OSError, ValueError)) else 1
    msg = str(e) or type(e).__name__
    if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
        msg = f"{msg}: {e.filename}"
    typer.secho(f"error: {msg.splitlines()[0]}", err=True, fg="red")
    if code == 1:
        typer.echo("(run with --debug for the traceback)", err=True)
    return code


if __name__ == "__main__":
    main()

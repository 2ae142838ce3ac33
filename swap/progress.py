"""Progress bars for the CLI: rich's `Progress`, shown only where rich can draw one.

On a console that is not interactive (output piped or captured, TERM=dumb) rich draws no bar, but
`Progress.stop()` still prints an empty line, which would come before every error, warning and
summary written after it. So the bar is disabled there, and the output is the same as --no-progress.
"""
from __future__ import annotations


def progress_bar(*columns, console=None, disable: bool = False, transient: bool = True, **kwargs):
    """A rich `Progress` with these columns on `console` (default: a stderr console), disabled when
    `disable` is set or the console is not interactive."""
    from rich.console import Console
    from rich.progress import Progress

    console = console if console is not None else Console(stderr=True)
    drawable = console.is_interactive or console.is_jupyter
    return Progress(*columns, console=console, disable=disable or not drawable, transient=transient, **kwargs)

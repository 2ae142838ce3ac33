"""Long loops on the CLI: rich's `Progress` bars, shown only where rich can draw one, and the time limits
("90s", "10m", "1h30m") that train, detect train and the demo take (`parse_duration`).

On a console that is not interactive (output piped or captured, TERM=dumb) rich draws no bar, but
`Progress.stop()` still prints an empty line, which would come before every error, warning and
summary written after it. So the bar is disabled there, and the output is the same as --no-progress.
"""
from __future__ import annotations

import re
from typing import Optional

from .errors import InputError


def parse_duration(text: Optional[str]) -> Optional[float]:
    """'90', '90s', '10m', '1h30m' -> seconds."""
    if text is None:
        return None
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise InputError(f"bad --time-limit {text!r}: use e.g. 90s, 10m, 1h30m")
    return sum(float(v) * {"h": 3600, "m": 60, "s": 1}[u] for v, u in parts)


def progress_bar(*columns, console=None, disable: bool = False, transient: bool = True, **kwargs):
    """A rich `Progress` with these columns on `console` (default: a stderr console), disabled when
    `disable` is set or the console is not interactive."""
    from rich.console import Console
    from rich.progress import Progress

    console = console if console is not None else Console(stderr=True)
    drawable = console.is_interactive or console.is_jupyter
    return Progress(*columns, console=console, disable=disable or not drawable, transient=transient, **kwargs)

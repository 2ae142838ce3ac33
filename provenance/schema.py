"""Schema-like checks of the files veriswap reads: types, shapes and ranges, one line naming file and field.

Every loader of a veriswap file format (faces.json, a model's config.json/state.json, alignments, labels,
detect's dataset.json, ...) describes what it reads with the specs below and calls `validate` on the parsed
JSON before using it. A wrongly typed field is then one `SchemaError` (an InputError: exit 2) such as

    fa/faces.json: field faces: expected an object (file name -> entry), got a list
    al.json: field sources["/v/a.mp4"].frames["3"][0].matrix: expected a 2x3 array of numbers, got 2x2

instead of an AttributeError deep in the code, an OpenCV assertion or numpy's "inhomogeneous shape".

A spec is a callable that checks one value and raises `_Bad` on failure; the field path is built only on
failure (as the error passes up through the containers), so checking a large file costs little more than
walking it. Numeric arrays (landmarks, matrices, embeddings) are checked with one numpy call each.
Lives in provenance/ (the bottom layer, no torch) so every package may use it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import InputError

Spec = Callable[[Any], None]


class SchemaError(InputError):
    """A file that parses but does not hold what its format says (wrong type, shape or range): exit 2."""


class _Bad(Exception):
    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg
        self.path: List[Union[str, int]] = []     # innermost first


def _got(v: Any) -> str:
    """What a value is, for a message: 'a list', "'abc' (a string)", '5 (an integer)'."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"{'true' if v else 'false'} (a boolean)"
    if isinstance(v, int):
        return f"{v} (an integer)"
    if isinstance(v, float):
        return f"{v!r} (a number)"
    if isinstance(v, str):
        s = v if len(v) <= 24 else v[:21] + "..."
        return f"{s!r} (a string)"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def field_path(path: Sequence[Union[str, int]]) -> str:
    """['sources', '/v/a.mp4', 'frames', '3', 0, 'matrix'] (outermost first) -> 'sources["/v/a.mp4"].frames["3"][0].matrix'."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p.isidentifier():
            out += f".{p}" if out else p
        else:
            out += f"[{p!r}]".replace("'", '"') if '"' not in p else f"[{p!r}]"
    return out


def validate(value: Any, spec: Spec, file: Union[str, Path], error: type = SchemaError) -> Any:
    """Check `value` (parsed from `file`) against `spec`; return it, or raise `error` naming file and field."""
    try:
        spec(value)
    except _Bad as e:
        where = field_path(list(reversed(e.path)))
        raise error(f"{file}: {'field ' + where if where else 'top level'}: {e.msg}") from None
    return value


def fail(msg: str) -> None:
    """For a custom spec: reject the value at hand with `msg`."""
    raise _Bad(msg)


def _sub(spec: Spec, v: Any, key: Union[str, int]) -> None:
    try:
        spec(v)
    except _Bad as e:
        e.path.append(key)
        raise


# ---- scalars -------------------------------------------------------------------------------------

def anything(v: Any) -> None:
    return None


def _range(v: float, lo: Optional[float], hi: Optional[float]) -> None:
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = (f"{lo}" if lo == hi else f"between {lo} and {hi}" if lo is not None and hi is not None
               else f">= {lo}" if lo is not None else f"<= {hi}")
        raise _Bad(f"must be {rng}, got {v}")


def Int(lo: Optional[int] = None, hi: Optional[int] = None) -> Spec:
    def check(v: Any) -> None:
        if not isinstance(v, int) or isinstance(v, bool):
            raise _Bad(f"expected an integer, got {_got(v)}")
        _range(v, lo, hi)
    return check


def Num(lo: Optional[float] = None, hi: Optional[float] = None) -> Spec:
    """A finite number (an integer is one too)."""
    def check(v: Any) -> None:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise _Bad(f"expected a number, got {_got(v)}")
        if not math.isfinite(v):
            raise _Bad(f"expected a finite number, got {v}")
        _range(v, lo, hi)
    return check


def Str(choices: Optional[Iterable[str]] = None, nonempty: bool = False) -> Spec:
    allowed = None if choices is None else tuple(choices)

    def check(v: Any) -> None:
        if not isinstance(v, str):
            raise _Bad(f"expected a string, got {_got(v)}")
        if nonempty and not v:
            raise _Bad("expected a non-empty string")
        if allowed is not None and v not in allowed:
            raise _Bad(f"must be one of {', '.join(map(repr, allowed))}, got {_got(v)}")
    return check


def Bool() -> Spec:
    def check(v: Any) -> None:
        if not isinstance(v, bool):
            raise _Bad(f"expected true or false, got {_got(v)}")
    return check


def Opt(spec: Spec) -> Spec:
    """`spec` or null."""
    def check(v: Any) -> None:
        if v is not None:
            spec(v)
    return check


def OneOf(*specs: Spec, what: str) -> Spec:
    """The first of `specs` that accepts the value; else 'expected `what`'."""
    def check(v: Any) -> None:
        for s in specs:
            try:
                s(v)
                return
            except _Bad:
                pass
        raise _Bad(f"expected {what}, got {_got(v)}")
    return check


# ---- containers ----------------------------------------------------------------------------------

def List_(item: Spec = anything, min_len: int = 0, max_len: Optional[int] = None) -> Spec:
    def check(v: Any) -> None:
        if not isinstance(v, list):
            raise _Bad(f"expected a list, got {_got(v)}")
        if len(v) < min_len or (max_len is not None and len(v) > max_len):
            n = f"{min_len}" if max_len == min_len else f"{min_len}..{max_len}" if max_len is not None else f">= {min_len}"
            raise _Bad(f"expected a list of {n} items, got {len(v)}")
        if item is not anything:
            for i, x in enumerate(v):
                _sub(item, x, i)
    return check


def Obj(required: Optional[Dict[str, Spec]] = None, optional: Optional[Dict[str, Spec]] = None,
        what: str = "an object") -> Spec:
    """A JSON object with these fields (others are allowed and not looked at)."""
    req, opt = dict(required or {}), dict(optional or {})

    def check(v: Any) -> None:
        if not isinstance(v, dict):
            raise _Bad(f"expected {what}, got {_got(v)}")
        for k, s in req.items():
            if k not in v:
                e = _Bad("missing")
                e.path.append(k)
                raise e
            _sub(s, v[k], k)
        for k, s in opt.items():
            if k in v:
                _sub(s, v[k], k)
    return check


def Map(value: Spec = anything, key: Optional[Callable[[str], bool]] = None, key_what: str = "",
        what: str = "an object") -> Spec:
    """A JSON object used as a mapping (any keys, or those `key` accepts), every value checked with `value`."""
    def check(v: Any) -> None:
        if not isinstance(v, dict):
            raise _Bad(f"expected {what}, got {_got(v)}")
        for k, x in v.items():
            if key is not None and not key(k):
                e = _Bad(f"key {k!r} is not {key_what or 'allowed'}")
                raise e
            _sub(value, x, k)
    return check


def int_key(k: str) -> bool:
    """A frame index written as an object key: "0", "17"."""
    return k.isdigit() and k.isascii()


# ---- numeric arrays ------------------------------------------------------------------------------

def Array(shape: Tuple[Optional[int], ...], lo: Optional[float] = None, hi: Optional[float] = None,
          what: str = "") -> Spec:
    """A nested list of finite numbers of this shape (None: any length), e.g. (68, 2) landmarks, (2, 3) an
    affine matrix, (128,) an embedding. One numpy conversion: strings, nulls, ragged rows are refused."""
    import numpy as np

    dims = "x".join("N" if d is None else str(d) for d in shape)
    desc = what or (f"a {dims} array of numbers" if len(shape) > 1 else
                    f"a list of {dims if shape[0] is not None else 'N'} numbers")

    def check(v: Any) -> None:
        if not isinstance(v, list):
            raise _Bad(f"expected {desc}, got {_got(v)}")
        try:
            a = np.array(v)
        except (ValueError, TypeError):
            a = None
        if a is None or a.dtype.kind not in "iuf" or a.ndim != len(shape):
            bad = _first_non_number(v, len(shape))
            raise _Bad(f"expected {desc}, " + (f"got {bad}" if bad else f"got {_shape_text(v)}"))
        if any(d is not None and d != n for d, n in zip(shape, a.shape)):
            raise _Bad(f"expected {desc}, got " + (f"{a.shape[0]} numbers" if a.ndim == 1 else 'x'.join(map(str, a.shape))))
        if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
            raise _Bad(f"expected {desc}, got NaN or infinity")
        if a.size and ((lo is not None and a.min() < lo) or (hi is not None and a.max() > hi)):
            rng = f"in [{lo}, {hi}]" if lo is not None and hi is not None else f">= {lo}" if lo is not None else f"<= {hi}"
            raise _Bad(f"values must be {rng}, got {a.min():g}..{a.max():g}")
    return check


def _first_non_number(v: Any, depth: int) -> Optional[str]:
    """The first leaf that is not a number, described ('a' (a string) at [3][1]), for the message."""
    stack: List[Tuple[Any, str, int]] = [(v, "", depth)]
    while stack:
        x, at, d = stack.pop()
        if d == 0:
            if not isinstance(x, (int, float)) or isinstance(x, bool):
                return f"{_got(x)} at {at or 'top'}"
            continue
        if not isinstance(x, list):
            return f"{_got(x)} at {at or 'top'}"
        stack.extend((y, f"{at}[{i}]", d - 1) for i, y in reversed(list(enumerate(x))))
    return None


def _shape_text(v: Any) -> str:
    if not isinstance(v, list):
        return "scalar"
    lens = {len(x) if isinstance(x, list) else -1 for x in v}
    if len(lens) > 1:
        return f"{len(v)} rows of unequal length"
    return f"{len(v)}x{lens.pop()}" if v and -1 not in lens else f"{len(v)}"


__all__ = ["Array", "Bool", "Int", "List_", "Map", "Num", "Obj", "OneOf", "Opt", "SchemaError", "Spec", "Str",
           "anything", "fail", "field_path", "int_key", "validate"]

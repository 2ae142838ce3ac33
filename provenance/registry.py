"""One small registry of named factories, in the manner of timm's `create_model`.

    COLORS = Registry("colour transfer", option="--color")

    @COLORS.register("avg")
    def _avg(...): ...

    COLORS.create("avg", **kw)      # calls the factory
    COLORS["avg"]                   # the factory itself;  "avg" in COLORS;  COLORS.names()

Every pluggable part uses it: face detectors, swap models, colour transfer, masks, sort scorers and
detect's aggregation rules. An unknown name is an `InputError` listing the choices.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, TypeVar

from .errors import InputError

T = TypeVar("T")


class Registry(Mapping):
    """name -> factory (any callable or object), in registration order; read like a dict."""

    def __init__(self, kind: str, option: Optional[str] = None):
        self.kind = kind                # what the entries are, for messages ("colour transfer")
        self.option = option            # the CLI option that picks one ("--color"), for messages
        self._items: Dict[str, Any] = {}
        self.info: Dict[str, Dict[str, Any]] = {}     # per-name facts given at registration

    def register(self, name: str, obj: Any = None, **info: Any):
        """`@reg.register("name")` on a factory, or `reg.register("name", obj)`; keyword facts go to
        `reg.info[name]` (e.g. a model's default arguments)."""
        def deco(o: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = o
            self.info[name] = dict(info)
            return o
        return deco if obj is None else deco(obj)

    def get(self, name: str, default: Any = None) -> Any:     # Mapping.get, without the KeyError detour
        return self._items.get(name, default)

    def lookup(self, name: str) -> Any:
        """The entry registered as `name`; InputError listing the choices when there is none."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            what = f"{self.option}" if self.option else self.kind
            raise InputError(f"unknown {what} {name!r}; choose from {', '.join(self._items)}") from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Call the factory registered as `name` with `kwargs`."""
        return self.lookup(name)(**kwargs)

    def names(self) -> List[str]:
        return list(self._items)

    def __getitem__(self, name: str) -> Any:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"


__all__ = ["Registry"]

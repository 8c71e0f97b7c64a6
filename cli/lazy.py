"""Commands imported only when they run: ``tollkeeper keys list`` loads the keys module and
what it needs, not the modules of every other command (start-up time is most of a quick
command's run time). ``--help`` of the root group still lists every command (it loads them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, ItemsView, Iterator, KeysView, ValuesView

import click

Spec = str | Callable[[], click.Command]  # "module:attribute", or a function that builds it


def _load(spec: Spec) -> click.Command:
    if callable(spec):
        return spec()
    module, _, attribute = spec.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command), spec
    return command


class LazyCommands(dict[str, click.Command]):
    """A click group's ``commands``: a name is known at once, its command is imported the
    first time it is looked up. Listing the commands themselves (``items``, ``values``)
    imports them all."""

    def __init__(self, specs: dict[str, Spec]) -> None:
        super().__init__()
        self._specs = dict(specs)

    def _ensure(self, name: str) -> None:
        spec = self._specs.pop(name, None)
        if spec is not None:
            super().__setitem__(name, _load(spec))

    def _ensure_all(self) -> None:
        for name in list(self._specs):
            self._ensure(name)

    def get(self, name: str, default: click.Command | None = None) -> click.Command | None:  # type: ignore[override]
        self._ensure(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> click.Command:
        self._ensure(name)
        return super().__getitem__(name)

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._specs.pop(name, None)
        super().__setitem__(name, command)

    def __contains__(self, name: object) -> bool:
        return name in self._specs or super().__contains__(name)

    def __iter__(self) -> Iterator[str]:
        return iter([*super().keys(), *self._specs])

    def __len__(self) -> int:
        return super().__len__() + len(self._specs)

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        self._ensure_all()
        return super().keys()

    def items(self) -> ItemsView[str, click.Command]:  # type: ignore[override]
        self._ensure_all()
        return super().items()

    def values(self) -> ValuesView[click.Command]:  # type: ignore[override]
        self._ensure_all()
        return super().values()

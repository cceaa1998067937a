"""How far a run's long steps have got, for whoever shows it: the CLI's bars when it runs
in a terminal. Nothing listens by default; a scheduled night has its logs instead.

The pipeline marks each step (`with step("transform"):`) and the code inside reports its
own units of work (`total(139)`, `advance()`), without knowing who, if anyone, watches.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Protocol


class Listener(Protocol):
    def begin(self, step: str, total: int | None) -> None: ...

    def total(self, step: str, total: int | None, unit: str) -> None: ...

    def advance(self, step: str, amount: int) -> None: ...

    def end(self, step: str, ok: bool) -> None: ...


_listener: Listener | None = None
_lock = threading.Lock()  # a load's reading thread and the flow's thread both report
_current: str | None = None


@contextlib.contextmanager
def shown_by(listener: Listener) -> Iterator[None]:
    """Report every step of the block to `listener`."""
    global _listener
    previous, _listener = _listener, listener
    try:
        yield
    finally:
        _listener = previous


@contextlib.contextmanager
def step(name: str, total: int | None = None) -> Iterator[None]:
    global _current
    with _lock:
        _current = name
        if _listener:
            _listener.begin(name, total)
    ok = False
    try:
        yield
        ok = True
    finally:
        with _lock:
            if _listener:
                _listener.end(name, ok)
            _current = None


def total(units: int | None, unit: str) -> None:
    """The current step has `units` (None: not known in advance) of `unit`: files, dbt
    nodes, marts, pages."""
    with _lock:
        if _listener and _current:
            _listener.total(_current, units, unit)


def advance(units: int = 1) -> None:
    with _lock:
        if _listener and _current:
            _listener.advance(_current, units)

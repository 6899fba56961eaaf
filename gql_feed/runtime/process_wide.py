"""A process-wide setting held by every app that runs in the process, applied once.

The GIL switch interval and the collector's settings belong to the process, not to an
app, yet each app's lifespan asks for them. Two apps in one process (a test run, a server
embedded beside another) each entering and leaving on its own would undo each other: the
first to stop would restore the old values under the one still serving. So the knob is
counted: the first holder applies it, later holders only count, and the last to leave
restores what was there before the first. Holders may leave in any order, from any
thread.

A later holder that asks for other values gets the ones already in force, with a warning:
the process can have only one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

V = TypeVar("V", bound=Hashable)

Restore = Callable[[], None]


class ProcessWide(Generic[V]):
    """`apply(value)` sets the knob and returns what restores it as it was."""

    def __init__(self, name: str, apply: Callable[[V], Restore]) -> None:
        self.name = name
        self._apply = apply
        self._lock = threading.Lock()
        self._holders = 0
        self._value: V | None = None
        self._restore: Restore | None = None

    @property
    def holders(self) -> int:
        return self._holders

    @property
    def value(self) -> V | None:
        """What is in force while held; None while nobody holds it."""
        return self._value

    @contextmanager
    def held(self, value: V) -> Iterator[None]:
        """While inside, the knob is `value` (or the first holder's, see the module doc)."""
        self._enter(value)
        try:
            yield
        finally:
            self._leave()

    def _enter(self, value: V) -> None:
        with self._lock:
            if self._holders == 0:
                self._restore = self._apply(value)
                self._value = value
            elif value != self._value:
                logger.warning(
                    "%s is already %r for another app in this process; %r is not applied",
                    self.name,
                    self._value,
                    value,
                )
            self._holders += 1

    def _leave(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders > 0:
                return
            restore, self._restore, self._value = self._restore, None, None
            if restore is not None:
                restore()

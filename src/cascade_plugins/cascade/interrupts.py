"""SIGINT and SIGTERM during a cascade run: save a checkpoint, then stop.

The first signal asks the running stage to stop: a backend that polls
``StageReporter.stop_requested()`` (``Backend.graceful_stop``) finishes its step, saves a resumable
checkpoint and raises :class:`~cascade_plugins.interfaces.StageInterrupted`. It has
``grace_seconds`` to do so; then, or on a second signal, or at once when nothing can save
(no stage running, or a backend that does not poll), the signal raises ``StageInterrupted`` where
the program is, and the stage resumes later from its last periodic checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from cascade_plugins.interfaces import StageInterrupted

__all__ = ["DEFAULT_GRACE_SECONDS", "EXIT_CODES", "StopController"]

DEFAULT_GRACE_SECONDS = 60.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the shell's convention: 128 + the signal number
EXIT_CODES = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}


class StopController:
    """Owns the SIGINT / SIGTERM handlers while installed (main thread only)."""

    def __init__(self, grace_seconds: float = DEFAULT_GRACE_SECONDS):
        self.grace_seconds = grace_seconds
        #: the first signal's name once one arrived
        self.reason: str | None = None
        #: a stage of a backend that saves on request is running
        self.graceful = False
        self._deadline_passed = False
        self._timer: threading.Timer | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> str | None:
        return self.reason

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopController]:
        """Handle the signals for the duration; a no-op outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            self._cancel_timer()
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
            self._previous.clear()

    @contextlib.contextmanager
    def stage(self, graceful: bool) -> Iterator[None]:
        """While a stage runs: ``graceful`` if its backend saves on request."""
        self.graceful = graceful
        try:
            yield
        finally:
            self.graceful = False
            self._cancel_timer()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.reason is None and self.graceful:
            self.reason = name
            self._say(
                f"\n{name}: stopping after the current step, which saves a checkpoint (at most "
                f"{self.grace_seconds:g} s; {name} again stops at once)\n"
            )
            self._timer = threading.Timer(self.grace_seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()
            return
        first = self.reason or name
        self.reason = first
        self._cancel_timer()
        if self._deadline_passed:
            raise StageInterrupted(f"{first} (no checkpoint within {self.grace_seconds:g} s)")
        raise StageInterrupted(first)

    def _expire(self) -> None:
        self._deadline_passed = True
        # a real signal to the main thread: it also wakes a blocking call (sleep, a read), which a
        # scheduled handler call (_thread.interrupt_main) would wait for
        main = threading.main_thread().ident
        if main is not None:
            signal.pthread_kill(main, signal.SIGINT)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @staticmethod
    def _say(text: str) -> None:
        # os.write: safe inside a signal handler, unlike a console that may hold its lock
        with contextlib.suppress(OSError):
            os.write(2, text.encode())

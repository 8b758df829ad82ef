"""A wall-clock limit for one problem, in any thread (Dask runs tasks in worker threads).

``signal.alarm`` works in the main thread only, and a Dask worker runs its task in a
thread of its own; so a timer thread raises :class:`ProblemTimeout` in the working thread
with CPython's ``PyThreadState_SetAsyncExc``.  The exception arrives at the next Python
bytecode of that thread: the solvers' step loops are Python, so a runaway solve stops
within one step; a single C call that never returns (``time.sleep(1e9)``) is not
interrupted until it returns.

:class:`ProblemTimeout` derives from ``BaseException`` so that no ``except Exception`` on
the way (in the library or in a user's gradient function) swallows it.

Examples
--------
>>> def spin():
...     while True:
...         pass
>>> try:
...     run_with_limit(spin, 0.05)
... except ProblemTimeout as exc:
...     print(exc)
no verdict within 0.05 s
>>> run_with_limit(lambda: 42, 1.0)
42
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ProblemTimeout(BaseException):
    """A problem took longer than its wall-clock limit."""


def run_with_limit(fn: Callable[[], T], seconds: float | None) -> T:
    """``fn()``, interrupted by :class:`ProblemTimeout` after ``seconds`` (``None``: no limit)."""
    if seconds is None:
        return fn()
    thread = threading.get_ident()
    lock = threading.Lock()
    state = {"running": True}

    def fire() -> None:
        with lock:  # the working thread cannot leave run_with_limit while we hold this
            if state["running"]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(ProblemTimeout))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        try:
            return fn()
        finally:
            with lock:
                state["running"] = False
            timer.cancel()
    except ProblemTimeout:
        # Delivered inside the try: fire() sets it while ``running`` holds, and the calls
        # in the finally block above (the lock, the timer) give the interpreter its chance.
        raise ProblemTimeout(f"no verdict within {seconds:g} s") from None


__all__ = ["ProblemTimeout", "run_with_limit"]

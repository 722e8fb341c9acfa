"""The runtime contract every stage of the library keeps with its caller (a script, or the ComfyUI nodes).

- ``progress(done, total)`` after each unit of work (a frame, a chunk, a denoising step);
- ``cancel()`` returns True when the caller wants the stage to stop; the stage checks it between units and
  raises :class:`Cancelled`, leaving nothing half-written.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


class Cancelled(RuntimeError):
    """Raised by a stage when its ``cancel()`` returned True between two units of work."""


def check_cancel(cancel: CancelFn | None, what: str) -> None:
    """Raise :class:`Cancelled` ("<what> cancelled") when ``cancel()`` says so."""
    if cancel is not None and cancel():
        raise Cancelled(f"{what} cancelled")

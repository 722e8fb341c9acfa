"""Which models the host keeps on the device while a graph runs, polled, and which node made each one leave.

A thread samples every ``interval`` seconds the bytes each of the host's loaded models holds on the device
(``ModelPatcher.loaded_size``: under dynamic VRAM the model's resident pages plus its force-loaded weights) and
the memory in use on the device. :func:`by_node` then tells, for each node of the run (from the executor's
"executing" stamps), each model's resident GiB when the node started and ended and the least in between: the node
at whose start a model is whole and at whose end it is not is the one that pushed it out.
"""

from __future__ import annotations

import time
from typing import Any

from timing import GiB, Poller


def resident_bytes() -> dict[str, int]:
    """Bytes on the device per loaded model (class name; a second model of a class gets ``#2``)."""
    import comfy.model_management as mm

    out: dict[str, int] = {}
    for loaded in list(mm.current_loaded_models):
        patcher = loaded.model
        if patcher is None:
            continue
        name = type(patcher.model).__name__
        while name in out:
            name = name + "#2"
        out[name] = int(patcher.loaded_size())
    return out


class Residency(Poller):
    """Polls :func:`resident_bytes` and the device's memory in use from ``__enter__`` to ``__exit__``."""

    def __init__(self, torch, interval: float = 0.05):
        super().__init__(interval)
        self.torch = torch
        self.samples: list[tuple[float, dict[str, int], int]] = []

    def sample(self) -> None:
        free, total = self.torch.cuda.mem_get_info()
        try:
            models = resident_bytes()
        except (RuntimeError, AttributeError):  # a model being swapped out between the list and the read
            models = {}
        self.samples.append((time.perf_counter(), models, total - free))

    def by_node(self, messages: list[tuple[str, Any]], stamps: list[float], class_of: dict[str, str],
                ballast_bytes: int = 0) -> dict[str, dict[str, Any]]:
        """Per node ("<id> <class>"): each model's resident GiB at its start, its end and the least in between
        (None where it was not in the host's list), and the device's memory in use at most (ballast left out)."""
        starts = [(t, str(data.get("node"))) for (event, data), t in zip(messages, stamps, strict=True)
                  if event == "executing" and data.get("node") is not None]
        end = stamps[-1] if stamps else 0.0
        report: dict[str, dict[str, Any]] = {}
        for (t0, node), (t1, _) in zip(starts, [*starts[1:], (end, None)], strict=True):
            inside = [s for s in self.samples if t0 <= s[0] <= t1] or [self._nearest(t0)]
            first, last = self._nearest(t0), self._nearest(t1)
            models = set(first[1]) | set(last[1]) | {m for s in inside for m in s[1]}
            report[f"{node} {class_of.get(node, '?')}"] = {
                "models_gib": {m: [_gib(first[1].get(m)), _gib(last[1].get(m)),
                                   _gib(min((s[1][m] for s in inside if m in s[1]), default=None))]
                               for m in sorted(models)},
                "device_peak_gib": round((max(s[2] for s in inside) - ballast_bytes) / GiB, 2),
            }
        return report

    def _nearest(self, t: float) -> tuple[float, dict[str, int], int]:
        return min(self.samples, key=lambda s: abs(s[0] - t)) if self.samples else (t, {}, 0)


def _gib(n: int | None) -> float | None:
    """GiB, or None where the model was not in the host's list (between a clone's unload and its load)."""
    return None if n is None else round(n / GiB, 2)


def evictions(report: dict[str, dict[str, Any]], model: str, drop_gib: float = 0.25) -> list[str]:
    """The nodes during which ``model`` lost more than ``drop_gib`` of what it held at their start (while it was
    in the host's list: a model briefly out of it, as when the host swaps one clone for another, is not counted)."""
    return [f"{node} -{gib[0] - gib[2]:.1f} GiB" for node, row in report.items()
            if (gib := row["models_gib"].get(model)) and None not in (gib[0], gib[2]) and gib[0] - gib[2] > drop_gib]

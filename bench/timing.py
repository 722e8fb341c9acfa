"""The benchmarks' one GPU timer: seconds of a region split at steps, each stamp taken after the devices'
queued work; peak memory per device (torch's allocator) and on the whole device (polled); the costliest GPU work
of a region (torch.profiler)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

GiB = 1024**3


class Gpu:
    """Synchronise, reset and read the peak memory of ``devices`` (default: the current CUDA device); no-ops and
    zeros where they are not all CUDA devices (the CPU runs of ``--tiny``)."""

    def __init__(self, torch, devices: Sequence[Any] | None = None):
        self.torch = torch
        self.devices = list(devices) if devices is not None else [None]  # None: the current device
        self.cuda = torch.cuda.is_available() and all(d is None or torch.device(d).type == "cuda"
                                                      for d in self.devices)

    def sync(self) -> None:
        if self.cuda:
            for d in self.devices:
                self.torch.cuda.synchronize(d)

    def reset_peak(self) -> None:
        if self.cuda:
            for d in self.devices:
                self.torch.cuda.reset_peak_memory_stats(d)

    def peak(self) -> tuple[float, float]:
        """GiB allocated and reserved at most by torch on the first device since the last reset."""
        if not self.cuda:
            return 0.0, 0.0
        d = self.devices[0]
        return self.torch.cuda.max_memory_allocated(d) / GiB, self.torch.cuda.max_memory_reserved(d) / GiB

    def peaks(self) -> dict[str, float]:
        """GiB allocated at most on each device, by its name."""
        if not self.cuda:
            return {}
        return {str(d): round(self.torch.cuda.max_memory_allocated(d) / GiB, 2) for d in self.devices}

    def total_gib(self) -> float:
        return self.torch.cuda.mem_get_info()[1] / GiB if self.cuda else 0.0

    def name(self) -> str:
        return self.torch.cuda.get_device_name() if self.cuda else "cpu"


class Timer:
    """``with Timer(gpu) as t:`` the region's seconds in ``t.seconds``; ``t.step`` as a step callback (a
    sampler's ``callback(step, x0, x, total)`` or a ``progress(step, total)``) stamps each step's end, and
    ``t.steps`` are then the seconds of each step, the first counted from the region's start. With a
    ``label``, each step's seconds are printed as it ends."""

    def __init__(self, gpu: Gpu, label: str | None = None):
        self.gpu, self.label = gpu, label
        self.stamps: list[float] = []
        self.start = self.seconds = 0.0

    def __enter__(self) -> Timer:
        self.gpu.sync()
        self.start = time.perf_counter()
        return self

    def step(self, step: int, *rest: Any) -> None:
        self.gpu.sync()
        self.stamps.append(time.perf_counter())
        if self.label is not None:
            total = rest[-1] if rest else "?"
            print(f"  {self.label}step {step + 1}/{total}: {self.steps[-1]:.2f} s", flush=True)

    def __exit__(self, *exc: object) -> None:
        self.gpu.sync()
        self.seconds = time.perf_counter() - self.start

    @property
    def steps(self) -> list[float]:
        return [b - a for a, b in zip([self.start, *self.stamps[:-1]], self.stamps, strict=True)]


def best_seconds(fn: Callable[[], object], gpu: Gpu, repeat: int) -> float:
    """The fastest of ``repeat`` timed calls of ``fn``, after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        with Timer(gpu) as timer:
            fn()
        best = min(best, timer.seconds)
    return best


def gpu_profile_table(run: Callable[[], T], rows: int, width: int = 70) -> tuple[T, str]:
    """``run()`` under torch.profiler: its result and a table of the ``rows`` costliest GPU operations and kernels
    by self GPU time (an operation's row and its kernels' rows count the same time), names cut at ``width``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    with profile(activities=[ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]) as prof:
        result = run()
        if cuda:
            torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=rows, max_name_column_width=width)
    return result, table


class Poller:
    """Calls ``sample()`` every ``interval`` seconds on a thread from ``__enter__`` to ``__exit__``."""

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class DevicePeak(Poller):
    """Peak GPU memory in use on the device (all allocators: torch's, comfy-aimdo's, the driver's), polled."""

    def __init__(self, torch, interval: float = 0.02):
        super().__init__(interval)
        self.torch, self.peak = torch, 0

    def sample(self) -> None:
        free, total = self.torch.cuda.mem_get_info()
        self.peak = max(self.peak, total - free)

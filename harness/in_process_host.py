"""The real ComfyUI host imported into this process, executing prompts with its executor.

    host = InProcessHost(work_dir).start()
    outputs = host.run(prompt)            # API-format prompt -> {node_id: ui outputs}
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bootstrap import hide_shims, import_failures_in_one_line, prepare, put_on_path
from harness.host_errors import NodeExecutionError, PromptValidationError
from harness.host_folders import work_dirs, write_model_paths_yaml
from harness.host_start import parse_host_args, start_dynamic_vram

# What main.py passes the executor with default flags; 0.33 reads "ram_inactive", 0.3.75 ignores it.
CACHE_ARGS = {"lru": 0, "ram": 0, "ram_inactive": 0}


def _resolved(value: Any) -> Any:
    """A cache lookup's result on either host: 0.33's output cache is async, 0.3.75's is not."""
    return asyncio.run(value) if inspect.isawaitable(value) else value


@dataclass
class _NodeReplacements:
    """0.33's registry of node replacements, which core nodes fill at start-up; kept, not served."""

    registered: list[Any] = field(default_factory=list)

    def register(self, replacement) -> None:
        self.registered.append(replacement)


@dataclass
class _RecordingServer:
    """Stands in for PromptServer during in-process execution; keeps every message sent."""

    client_id: str | None = None
    last_node_id: str | None = None
    last_prompt_id: str | None = None
    sockets_metadata: dict = field(default_factory=dict)
    messages: list[tuple[str, Any]] = field(default_factory=list)
    # time.perf_counter() at each message, for per-node timings
    stamps: list[float] = field(default_factory=list)
    node_replace_manager: _NodeReplacements = field(default_factory=_NodeReplacements)

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))
        self.stamps.append(time.perf_counter())

    def queue_updated(self):
        pass

    def send_progress_text(self, text, node_id, sid=None):
        self.send_sync("progress_text", {"node": node_id, "text": text}, sid)


class InProcessHost:
    """Imports the host into this process and executes prompts with its executor.

    ``cpu=True`` (tests): the host's defaults with ``--cpu``. ``cpu=False`` (GPU benchmarks): the host
    parses ``host_args`` as it parses main.py's command line (e.g. ``["--reserve-vram", "56", "--fast",
    "fp8_matrix_mult"]``), and dynamic VRAM starts as main.py starts it where the host has it (0.33 on
    NVIDIA), so models load through the same patcher as for a user.
    """

    def __init__(self, work_dir: Path, cpu: bool = True, host_args: tuple[str, ...] = ()):
        self.work_dir = Path(work_dir)
        self.cpu = cpu
        self.host_args = tuple(host_args)
        self.dynamic_vram = False
        self.server = _RecordingServer()
        self.executor = None
        self.import_failures: list[str] = []
        # (node_id, value, total) of every progress-bar update of the last prompt, before the host's
        # throttling (0.33 forwards at most one update per 100 ms to its hook, and so to the UI).
        self.bar_updates: list[tuple[str | None, int, int]] = []
        # Called as on_progress(value, total, node_id) from every progress-bar update; tests use it to
        # interrupt a running prompt the way the UI's cancel button does.
        self.on_progress = None

    @property
    def models_dir(self) -> Path:
        return self.work_dir / "models"

    @property
    def input_dir(self) -> Path:
        return self.work_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.work_dir / "output"

    def start(self) -> InProcessHost:
        root = prepare()
        dirs = work_dirs(self.work_dir)
        yaml_path = write_model_paths_yaml(self.work_dir)
        put_on_path(root)
        args = parse_host_args(self.host_args)
        args.cpu = self.cpu
        args.disable_auto_launch = True
        self.dynamic_vram = not self.cpu and start_dynamic_vram(args)
        import folder_paths
        import utils.extra_config

        utils.extra_config.load_extra_path_config(str(yaml_path))
        folder_paths.set_input_directory(str(dirs["input"]))
        folder_paths.set_output_directory(str(dirs["output"]))
        folder_paths.set_temp_directory(str(dirs["temp"]))
        folder_paths.set_user_directory(str(dirs["user"]))

        import comfy.utils
        import execution

        import nodes

        def progress_hook(value, total, preview_image, prompt_id=None, node_id=None):
            import comfy.model_management

            comfy.model_management.throw_exception_if_processing_interrupted()  # as the host's main.py hook
            node_id = node_id if node_id is not None else self.server.last_node_id
            self.server.send_sync("progress", {"value": value, "max": total, "node": node_id})
            if preview_image is not None:  # (format, PIL image, max size), as ComfyUI's server takes it
                fmt, image, max_size = preview_image
                self.server.send_sync("preview", {"node": node_id, "format": fmt, "size": image.size,
                                                  "max_size": max_size})

        import server

        server.PromptServer.instance = self.server  # core nodes reach the server through it at start-up
        comfy.utils.set_progress_bar_global_hook(progress_hook)
        self._record_bar_updates(comfy.utils.ProgressBar)
        with import_failures_in_one_line():
            self.import_failures = asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        hide_shims()
        self.executor = execution.PromptExecutor(self.server, cache_type=execution.CacheType.CLASSIC,
                                                 cache_args=CACHE_ARGS)
        return self

    def _record_bar_updates(self, bar_class: type) -> None:
        """Wrap the host's ``ProgressBar.update_absolute`` (once) to see every update a node makes."""
        update = bar_class.update_absolute
        if getattr(update, "_ex4d_recording", False):
            return
        host = self

        def update_absolute(bar, value, total=None, preview=None):
            node_id = bar.node_id if bar.node_id is not None else host.server.last_node_id
            host.bar_updates.append((node_id, value, total if total is not None else bar.total))
            if host.on_progress is not None:
                host.on_progress(value, total if total is not None else bar.total, node_id)
            return update(bar, value, total, preview)

        update_absolute._ex4d_recording = True
        bar_class.update_absolute = update_absolute

    def progress_values(self, node_id: str) -> list[int]:
        """Every value ``node_id`` gave its progress bar during the last prompt (the host may have sent
        the UI fewer: see :attr:`bar_updates`)."""
        return [value for node, value, _ in self.bar_updates if node == str(node_id)]

    @property
    def node_classes(self) -> dict[str, type]:
        import nodes

        return nodes.NODE_CLASS_MAPPINGS

    def validate(self, prompt: dict[str, Any]) -> list[str]:
        import execution

        prompt_id = str(uuid.uuid4())
        valid = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
        if not valid[0]:
            raise PromptValidationError(valid[1], valid[3])
        return valid[2]

    def run(self, prompt: dict[str, Any]) -> dict[str, Any]:
        """Validate and execute an API-format prompt; return the UI outputs by node id.

        Raises PromptValidationError or NodeExecutionError with the host's own messages.
        """
        outputs_to_execute = self.validate(prompt)
        prompt_id = str(uuid.uuid4())
        self.server.messages.clear()
        self.server.stamps.clear()
        self.bar_updates.clear()
        self.executor.execute(prompt, prompt_id, {"client_id": "harness"}, outputs_to_execute)
        for event, data in self.server.messages:
            if event == "execution_error":
                raise NodeExecutionError(data)
            if event == "execution_interrupted":
                raise InterruptedError(f"execution interrupted at node {data.get('node_id')}")
        return self.executor.history_result["outputs"]

    @contextlib.contextmanager
    def interrupt_when(self, node_id: str, at_value: int = 1) -> Iterator[list[int]]:
        """Within the block, interrupt the running prompt once ``node_id`` updates its progress bar to
        >= ``at_value`` (as the Cancel button does at that moment); yields the values that node gave its
        bar, whether or not the host forwarded them."""
        seen: list[int] = []

        def hook(value, total, reporting_node):
            if reporting_node == node_id:
                seen.append(value)
                if value >= at_value:
                    self.interrupt()

        self.on_progress = hook
        try:
            yield seen
        finally:
            self.on_progress = None

    def interrupt(self) -> None:
        """What the UI's cancel button does: flag the running prompt for interruption."""
        import nodes

        nodes.interrupt_processing(True)

    def node_output(self, node_id: str) -> list[Any]:
        """The values a node of the last prompt returned (from the executor's output cache).

        Each output slot is a list (one item per list element; usually one)."""
        entry = _resolved(self.executor.caches.outputs.get(str(node_id)))
        if entry is None:
            raise KeyError(f"node {node_id} has no cached output")
        return entry.outputs

    def node_seconds(self) -> dict[str, float]:
        """Seconds each node of the last prompt ran, from the executor's "executing" messages (a node runs
        until the next one starts; the last until the prompt ends). Cached nodes send none."""
        starts = [(t, data.get("node")) for (event, data), t in zip(self.server.messages, self.server.stamps,
                                                                     strict=True) if event == "executing"]
        end = self.server.stamps[-1] if self.server.stamps else 0.0
        seconds: dict[str, float] = {}
        for (t, node), (t_next, _) in zip(starts, [*starts[1:], (end, None)], strict=True):
            if node is not None:
                seconds[str(node)] = seconds.get(str(node), 0.0) + (t_next - t)
        return seconds

    def events(self, name: str) -> list[Any]:
        return [data for event, data in self.server.messages if event == name]

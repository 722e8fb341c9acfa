"""The real ComfyUI host, driven two ways: in-process through its executor, or as a server.

    host = InProcessHost(work_dir).start()
    outputs = host.run(prompt)            # API-format prompt -> {node_id: ui outputs}

    with ServerHost(work_dir) as server:  # python main.py --cpu on 127.0.0.1, free port
        server.get_json("/object_info")

Both point the host's input, output, temp and user folders and its model folders at ``work_dir``
(models under ``work_dir/models/<folder>``), so tests and the demo never touch the host's own tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import frontend_package
from harness.bootstrap import (
    REPO,
    hide_shims,
    host_dir,
    import_failures_in_one_line,
    prepare,
    put_on_path,
    shim_paths,
)

# Model folders of the host that the pack's workflows use, plus the pack's own.
MODEL_FOLDERS = (
    "diffusion_models",
    "vae",
    "text_encoders",
    "clip_vision",
    "loras",
    "checkpoints",
    "ex4d",
    "depthcrafter",
    "depth_anything",
)


def _write_model_paths_yaml(work_dir: Path) -> Path:
    models = work_dir / "models"
    lines = ["ex4d_harness:", f"  base_path: {models}", "  is_default: true"]
    for name in MODEL_FOLDERS:
        (models / name).mkdir(parents=True, exist_ok=True)
        lines.append(f"  {name}: {name}")
    path = work_dir / "extra_model_paths.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _work_dirs(work_dir: Path) -> dict[str, Path]:
    dirs = {name: work_dir / name for name in ("input", "output", "temp", "user")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return dirs


# What main.py passes the executor with default flags; 0.33 reads "ram_inactive", 0.3.75 ignores it.
CACHE_ARGS = {"lru": 0, "ram": 0, "ram_inactive": 0}


def _resolved(value: Any) -> Any:
    """A cache lookup's result on either host: 0.33's output cache is async, 0.3.75's is not."""
    return asyncio.run(value) if inspect.isawaitable(value) else value


def _parse_host_args(host_args: tuple[str, ...]):
    """The host's ``args``: its defaults, or ``host_args`` parsed by its own parser (as main.py's command
    line would be); must run before any other comfy module is imported."""
    import comfy.options

    if host_args:
        comfy.options.enable_args_parsing()
        saved, sys.argv = sys.argv, ["main.py", *host_args]
        try:
            from comfy.cli_args import args
        finally:
            sys.argv = saved
    from comfy.cli_args import args

    return args


def start_dynamic_vram(args) -> bool:
    """Dynamic VRAM as the host's main.py starts it (0.33 on, NVIDIA, unless flags turn it off): comfy-aimdo
    loaded before the comfy modules that use it import, then set up on each device, and the dynamic model
    patcher for every model loaded afterwards. False where the host has none (0.3.75) or leaves it off."""
    import comfy.cli_args

    enables = getattr(comfy.cli_args, "enables_dynamic_vram", None)
    if enables is None or not enables():
        return False
    import comfy_aimdo.control

    headroom = None if args.reserve_vram is None else int(args.reserve_vram * 1024**3)
    if not comfy_aimdo.control.init(simple_vram_headroom=headroom, nvml_pressure=not args.disable_nvml_pressure):
        return False
    import comfy.memory_management
    import comfy.model_management as mm
    import comfy.model_patcher

    if not (mm.is_nvidia() and mm.torch_version_numeric >= (2, 8)):
        return False
    devices = [(d.index, int(args.vram_headroom * 1024**3)) for d in mm.get_all_torch_devices()]
    if not comfy_aimdo.control.init_devices(devices):
        return False
    comfy.model_patcher.CoreModelPatcher = comfy.model_patcher.ModelPatcherDynamic
    comfy.memory_management.aimdo_enabled = True
    return True


class NodeExecutionError(RuntimeError):
    """A prompt failed inside the host; ``details`` is the host's execution_error message."""

    def __init__(self, details: dict[str, Any]):
        self.details = details
        super().__init__(
            f"{details.get('node_type')} (node {details.get('node_id')}): "
            f"{details.get('exception_type')}: {details.get('exception_message')}"
        )


class PromptValidationError(RuntimeError):
    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any]):
        self.error = error
        self.node_errors = node_errors
        super().__init__(f"{error.get('message')}: {json.dumps(node_errors)[:2000]}")


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
        dirs = _work_dirs(self.work_dir)
        yaml_path = _write_model_paths_yaml(self.work_dir)
        put_on_path(root)
        args = _parse_host_args(self.host_args)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerHost:
    """``python main.py --cpu`` on 127.0.0.1 and a free port, as a subprocess (through :mod:`harness.serve`,
    which sets the host up as :class:`InProcessHost` does)."""

    def __init__(self, work_dir: Path, extra_args: tuple[str, ...] = (), pack: bool = True):
        self.work_dir = Path(work_dir)
        self.extra_args = extra_args
        self.pack = pack
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.work_dir / f"server-{self.port}.log"
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        dirs = _work_dirs(self.work_dir)
        yaml_path = _write_model_paths_yaml(self.work_dir)
        cmd = [sys.executable, "-m", "harness.serve", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch", "--extra-model-paths-config", str(yaml_path),
               "--input-directory", str(dirs["input"]), "--output-directory", str(dirs["output"]),
               "--temp-directory", str(dirs["temp"]), "--user-directory", str(dirs["user"]),
               # a file, not ":memory:": sqlalchemy shares an in-memory sqlite connection across threads, which
               # sqlite refuses, and 0.3.75 logs a traceback for it at every prompt
               "--database-url", f"sqlite:///{self.work_dir / 'comfyui.db'}", "--log-stdout"]
        if not self.pack:
            cmd.append("--disable-all-custom-nodes")
        return cmd + list(frontend_package.server_args()) + list(self.extra_args)

    def start(self, timeout: float = 240.0) -> ServerHost:
        root = prepare()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        # harness.serve runs the host's main.py from the host's folder: the harness and, where a package does
        # not import, the placeholders (shim_paths) go on the path
        paths = [str(REPO), *shim_paths(), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(paths))
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                self.get_json("/system_stats", timeout=2)
                self.startup_seconds = time.perf_counter() - t0
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer within {timeout} s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def get_json(self, path: str, timeout: float = 30) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def get(self, path: str, timeout: float = 30) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return r.read()

    def post_json(self, path: str, payload: Any, timeout: float = 30) -> Any:
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return {"http_status": e.code, **json.loads(e.read() or b"{}")}

    def upload(self, path: Path, kind: str = "input") -> dict[str, Any]:
        """Upload a file the way the frontend's upload button does (``/upload/image``)."""
        boundary = uuid.uuid4().hex
        body = b"".join([
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode(), path.read_bytes(), b"\r\n",
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n{kind}\r\n".encode(),
            f"--{boundary}--\r\n".encode(),
        ])
        req = urllib.request.Request(self.url + "/upload/image", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def queue(self, prompt: dict[str, Any]) -> dict[str, Any]:
        return self.post_json("/prompt", {"prompt": prompt, "client_id": "harness"})

    def wait(self, prompt_id: str, timeout: float = 600, poll: float = 0.02) -> dict[str, Any]:
        """The history entry of a queued prompt once it has finished (asked every ``poll`` seconds)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            history = self.get_json(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                entry = history[prompt_id]
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            time.sleep(poll)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> ServerHost:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def host_root() -> Path:
    return host_dir()


logging.getLogger("harness").addHandler(logging.NullHandler())

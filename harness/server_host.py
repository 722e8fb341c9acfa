"""The real ComfyUI host as a server: ``python main.py --cpu`` on 127.0.0.1 and a free port, in a subprocess.

    with ServerHost(work_dir) as server:
        server.get_json("/object_info")
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from harness import frontend_package
from harness.bootstrap import REPO, prepare, shim_paths
from harness.host_folders import work_dirs, write_model_paths_yaml


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
        dirs = work_dirs(self.work_dir)
        yaml_path = write_model_paths_yaml(self.work_dir)
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
                return json.loads(r.read() or b"null")  # some routes answer with an empty body
        except urllib.error.HTTPError as e:
            return {"http_status": e.code, **json.loads(e.read() or b"{}")}

    def free(self) -> None:
        """What the frontend's "free model and node cache" does (POST /free): the server unloads its models and
        drops its cached node outputs before the next prompt, so a prompt queued again runs again."""
        self.post_json("/free", {"unload_models": True, "free_memory": True})

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

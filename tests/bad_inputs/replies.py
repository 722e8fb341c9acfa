"""What the server answered a prompt: refused at queue time, failed running, accepted, or crashed; and what
a prompt left behind."""

from __future__ import annotations

import json
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.host import ServerHost

from .messages import EXPECTED_EXCEPTIONS, HOST_CHECKS, VALIDATION_CRASHES


@dataclass
class Error:
    """One error the host reported: at queue time attached to ``input`` (None: to no input), at run time
    raised by node ``node`` (``input`` None: the message names it)."""

    node: str
    input: str | None
    kind: str  # the host's error type at queue time, the exception type at run time
    text: str  # the pack's message, or the host's message and details

    @property
    def ours(self) -> bool:
        """Written by the pack (a validator's or a node's message), not one of the host's own checks."""
        return self.kind not in HOST_CHECKS


@dataclass
class Reply:
    stage: str  # "queue" (refused by /prompt), "run" (failed executing), "accepted" (ran) or "crash"
    errors: list[Error] = field(default_factory=list)
    crash: str = ""
    seconds: float = 0.0


def queue_errors(reply: dict[str, Any]) -> list[Error]:
    """The errors of a /prompt refusal, one per (node, input) the host attached one to."""
    errors = []
    for node, entry in (reply.get("node_errors") or {}).items():
        for e in entry.get("errors", []):
            input_name = (e.get("extra_info") or {}).get("input_name")
            details = str(e.get("details", ""))
            if (
                e.get("type") == "custom_validation_failed"
                and input_name
                and details.startswith(f"{input_name} - ")
            ):
                text = details[len(input_name) + 3 :]  # the host prefixes the validator's text with the input
            else:
                text = f"{e.get('message', '')}: {details}"
            errors.append(Error(str(node), input_name, str(e.get("type")), text))
    if not errors:  # refused as a whole (no outputs, a malformed prompt)
        error = reply.get("error") or {}
        errors.append(
            Error("", None, str(error.get("type")), f"{error.get('message')}: {error.get('details')}")
        )
    return errors


def submit(server: ServerHost, prompt: dict[str, Any], timeout: float = 120) -> Reply:
    """Queue ``prompt`` and, if accepted, wait for it: what the host answered and when."""
    t0 = time.perf_counter()
    try:
        reply = server.queue(prompt)
        if "http_status" in reply:
            if reply["http_status"] != 400:
                return Reply("crash", crash=f"/prompt answered HTTP {reply['http_status']}")
            errors = queue_errors(reply)
            crashed = [e.kind for e in errors if e.kind in VALIDATION_CRASHES]
            stage, crash = ("crash", f"validation raised: {errors}") if crashed else ("queue", "")
            return Reply(stage, errors, crash, time.perf_counter() - t0)
        entry = server.wait(reply["prompt_id"], timeout=timeout)
    except TimeoutError:
        return Reply("crash", crash=f"no answer within {timeout} s")
    except (urllib.error.URLError, ConnectionError, json.JSONDecodeError) as e:
        return Reply("crash", crash=f"the server did not answer ({e})")
    seconds = time.perf_counter() - t0
    if entry["status"]["status_str"] == "success":
        return Reply("accepted", seconds=seconds)
    failures = [data for event, data in entry["status"].get("messages", []) if event == "execution_error"]
    if not failures:
        return Reply("crash", crash=f"failed without an execution_error: {entry['status']}", seconds=seconds)
    data = failures[0]
    error = Error(
        str(data.get("node_id")),
        None,
        str(data.get("exception_type")),
        str(data.get("exception_message", "")).strip(),
    )
    if error.kind not in EXPECTED_EXCEPTIONS:
        return Reply(
            "crash", [error], f"{error.kind} escaped from {data.get('node_type')}: {error.text}", seconds
        )
    return Reply("run", [error], seconds=seconds)


def serving(server: ServerHost) -> str:
    """'' when the server is up and idle, else what is wrong."""
    if server.proc is None or server.proc.poll() is not None:
        return "the server process has exited"
    try:
        queue = server.get_json("/queue", timeout=10)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return f"the server does not answer ({e})"
    if queue.get("queue_running") or queue.get("queue_pending"):
        return f"the server is still busy: {queue}"
    return ""


# Folders of a server's work directory that hold what the tests put there, not what prompts write.
FIXTURE_FOLDERS = ("input", "models", "user")


def written_files(work_dir: Path) -> set[str]:
    """Every file under ``work_dir`` a prompt may have written (outside the input, model and user folders, the
    server's log and database)."""
    found = set()
    for path in work_dir.rglob("*"):
        relative = path.relative_to(work_dir)
        if relative.parts[0] in FIXTURE_FOLDERS or path.is_dir():
            continue
        if relative.name.startswith(("server-", "comfyui.db")):
            continue
        found.add(str(relative))
    return found

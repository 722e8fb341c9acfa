"""Serve another ComfyUI frontend than the host's pinned one: ``EX4D_FRONTEND=<version>``.

    EX4D_FRONTEND=1.58.1 ./dev test -m browser     # the browser tests on frontend 1.58.1

The version is PyPI's ``comfyui-frontend-package==<version>``, installed once (at set-up, without its
dependencies) into ``.host/frontends/<version>/`` beside the hosts, and served by every server the harness
starts (``--front-end-root``). Unset (or ``pinned``), the host serves the frontend its requirements pin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FRONTEND_ENV = "EX4D_FRONTEND"
FRONTENDS_DIR = REPO / ".host" / "frontends"
PACKAGE = "comfyui-frontend-package"


def requested_version() -> str | None:
    """The version ``EX4D_FRONTEND`` names, or None for the host's pinned frontend."""
    value = os.environ.get(FRONTEND_ENV, "").strip()
    if not value or value == "pinned":
        return None
    if not re.fullmatch(r"\d+\.\d+\.\d+", value):
        raise ValueError(f"{FRONTEND_ENV}={value}: expected a {PACKAGE} version such as 1.58.1, or unset "
                         "(or 'pinned') for the host's own frontend")
    return value


def static_dir(version: str) -> Path:
    return FRONTENDS_DIR / version / "comfyui_frontend_package" / "static"


def install(version: str) -> Path:
    """``comfyui-frontend-package==version`` in its own folder (once); its static folder, which the server
    takes as ``--front-end-root``."""
    static = static_dir(version)
    if not (static / "index.html").is_file():
        print(f"[ex4d] installing {PACKAGE}=={version} into {FRONTENDS_DIR / version}", flush=True)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                               "--no-deps", "--upgrade", "--target", str(FRONTENDS_DIR / version),
                               f"{PACKAGE}=={version}"])
    return static


def server_args() -> tuple[str, ...]:
    """The server arguments that serve the requested frontend (none for the pinned one)."""
    version = requested_version()
    return () if version is None else ("--front-end-root", str(install(version)))

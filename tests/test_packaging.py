"""Packaging metadata: pyproject, requirements.txt and the registry table agree."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent


def test_requirements_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert reqs == project["dependencies"]
    assert not any(r.split(">")[0].split("=")[0] == "torch" for r in reqs), "torch belongs to ComfyUI"


def test_registry_metadata():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    comfy = data["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert (REPO / comfy["Icon"]).is_file()
    assert data["project"]["license"] == "GPL-3.0-or-later"


def test_library_never_imports_comfy():
    for path in (REPO / "ex4d").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                assert root not in {"comfy", "comfy_api", "comfy_extras", "folder_paths", "nodes",
                                    "server", "execution"}, f"{path.name} imports {name}"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "./dev test" in readme
    assert "./dev test" in (REPO / ".ci" / "run").read_text()


def test_readme_lists_every_node(host):
    readme = (REPO / "README.md").read_text()
    nodes = readme[readme.index("## Nodes"):readme.index("## Install into your ComfyUI")]
    names = [cls.GET_SCHEMA().display_name for node_id, cls in host.node_classes.items()
             if node_id.startswith("EX4D")]
    assert len(names) >= 20
    missing = [n for n in names if n not in nodes]
    assert not missing, f"README's node table lacks {missing}"


def test_every_pack_input_has_a_tooltip(host):
    missing = [f"{node_id}.{spec.id}" for node_id, cls in host.node_classes.items() if node_id.startswith("EX4D")
               for spec in cls.GET_SCHEMA().inputs if not getattr(spec, "tooltip", None)]
    assert not missing, f"inputs without a tooltip: {missing}"


def test_build_system_floor_reads_the_licence_fields():
    """``license = "<SPDX expression>"`` with ``license-files`` needs setuptools 77 (PEP 639); 69 refuses to build."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    (setuptools,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    assert isinstance(data["project"]["license"], str) and "license-files" in data["project"]
    floor = tuple(int(x) for x in setuptools.split(">=")[1].split("."))
    assert floor >= (77,), setuptools


def test_one_cancelled_for_every_stage():
    """One runtime contract (ex4d.runtime): every stage raises the same Cancelled, which the nodes map once."""
    from ex4d import depth, render, runtime, video

    assert depth.Cancelled is runtime.Cancelled
    sources = "\n".join((REPO / "ex4d" / name).read_text() for name in ("render.py", "video.py", "depth/crafter.py",
                                                                        "depth/anything.py"))
    assert "class Cancelled" not in sources and "check_cancel(cancel" in sources
    assert render.check_cancel is video.check_cancel is runtime.check_cancel


def test_wheel_ships_every_library_package(tmp_path):
    """The built wheel holds every package under ex4d/ (each folder with an ``__init__.py``), not only the top one."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "ex4d", project / "ex4d", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The build backend itself, without isolation: the test machine reaches no package index.
    build = f"import setuptools.build_meta as backend; print(backend.build_wheel({str(tmp_path)!r}))"
    done = subprocess.run([sys.executable, "-c", build], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    wheel_name = done.stdout.strip().splitlines()[-1]
    shipped = set(zipfile.ZipFile(tmp_path / wheel_name).namelist())
    packages = sorted(init.parent.relative_to(REPO).as_posix() for init in (REPO / "ex4d").rglob("__init__.py"))
    assert len(packages) >= 4, packages
    missing = [package for package in packages if f"{package}/__init__.py" not in shipped]
    assert not missing, f"the wheel leaves out {missing}: pyproject's [tool.setuptools] must find every ex4d package"

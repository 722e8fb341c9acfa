"""The pack in the real ComfyUI frontend (headless Chromium): extension, node defs, UI workflows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.frontend import Frontend, chromium_path
from harness.host import ServerHost

REPO = Path(__file__).resolve().parent.parent
UI_WORKFLOWS = sorted(p for p in (REPO / "workflows").glob("*.json") if not p.name.endswith("_api.json"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed (./dev test installs it)"),
]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    with ServerHost(tmp_path_factory.mktemp("frontend")) as server, Frontend(server) as frontend:
        yield frontend


def _normalise(prompt: dict) -> dict:
    out = {}
    for node_id, node in prompt.items():
        inputs = {k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
                  for k, v in node["inputs"].items()}
        out[str(node_id)] = {"class_type": node["class_type"], "inputs": inputs}
    return out


def test_extension_loads_once_without_errors(ui):
    assert ui.extensions().count("EX-4D.types") == 1
    errors = [line for line in ui.console if "ex4d" in line.lower() and ("error" in line.lower())]
    assert not errors, errors


def test_pack_nodes_registered_in_frontend(ui):
    info = ui.server.get_json("/object_info")
    pack_nodes = [name for name, spec in info.items() if spec.get("category", "").startswith("EX-4D")]
    assert pack_nodes
    assert all(ui.registered(name) for name in pack_nodes)


def test_every_api_workflow_has_a_ui_twin():
    api = sorted(p.name.replace("_api.json", ".json") for p in (REPO / "workflows").glob("*_api.json"))
    assert api == [p.name for p in UI_WORKFLOWS], "run scripts/make_ui_workflows.py"


@pytest.mark.parametrize("path", UI_WORKFLOWS, ids=[p.stem for p in UI_WORKFLOWS])
def test_ui_workflow_opens_and_queues_as_its_api_twin(ui, path):
    workflow = json.loads(path.read_text())
    ui.load_workflow(workflow)
    assert "Invalid workflow" not in ui.page_text(), f"{path.name} fails the frontend's schema check"
    types = ui.graph_node_types()
    missing = [t for t in types if not ui.registered(t)]
    assert not missing, f"{path.name}: node types unknown to the frontend: {missing}"
    api_twin = json.loads(path.with_name(path.stem + "_api.json").read_text())
    assert _normalise(ui.to_api()) == _normalise(api_twin)

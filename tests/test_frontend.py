"""The pack in the real ComfyUI frontend (headless Chromium): extension, node defs, UI workflows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.frontend import Frontend, chromium_path
from harness.host import ServerHost

REPO = Path(__file__).resolve().parent.parent
UI_WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
API_WORKFLOWS = REPO / "workflows" / "api"


def api_twin_path(ui_path: Path) -> Path:
    return API_WORKFLOWS / f"{ui_path.stem}_api.json"

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
    api = sorted(p.name.replace("_api.json", ".json") for p in API_WORKFLOWS.glob("*_api.json"))
    assert api == [p.name for p in UI_WORKFLOWS], "run scripts/make_ui_workflows.py"


@pytest.mark.parametrize("path", UI_WORKFLOWS, ids=[p.stem for p in UI_WORKFLOWS])
def test_ui_workflow_opens_and_queues_as_its_api_twin(ui, path):
    workflow = json.loads(path.read_text())
    ui.load_workflow(workflow)
    assert "Invalid workflow" not in ui.page_text(), f"{path.name} fails the frontend's schema check"
    types = ui.graph_node_types()
    missing = [t for t in types if not ui.registered(t)]
    assert not missing, f"{path.name}: node types unknown to the frontend: {missing}"
    queued = _normalise(ui.to_api())
    api_twin = _normalise(json.loads(api_twin_path(path).read_text()))
    # inputs this host's node does not define are not queued (the long workflow's 0.33 Wan Context Windows
    # inputs on 0.3.75, whose executor ignores them too)
    info = ui.server.get_json("/object_info")
    for node in api_twin.values():
        spec = info[node["class_type"]]["input"]
        defined = {*spec.get("required", {}), *spec.get("optional", {})}
        node["inputs"] = {k: v for k, v in node["inputs"].items() if k in defined}
    # every input the twin sets is queued with the twin's value ...
    assert {n: {"class_type": queued[n]["class_type"],
                "inputs": {k: queued[n]["inputs"].get(k) for k in node["inputs"]}} for n, node in api_twin.items()
            if n in queued} == api_twin and queued.keys() == api_twin.keys()
    # ... and inputs a newer host added (0.33: CreateVideo's bit_depth, SaveVideo's codec) get the values
    # this frontend gives them when it opens the twin itself
    ui.load_api(api_twin)
    assert _normalise(ui.to_api()) == queued


def test_template_browser_lists_only_workflows_that_open(ui):
    """Both hosts serve the pack's ``workflows/`` folder as templates: every entry must open."""
    listed = ui.server.get_json("/workflow_templates").get("ComfyUI-EX4D")
    assert sorted(listed) == [p.stem for p in UI_WORKFLOWS]
    for name in listed:
        workflow = ui.server.get_json(f"/api/workflow_templates/ComfyUI-EX4D/{name}.json")
        assert "version" in workflow, f"{name}: the frontend refuses a template without a version"
        ui.load_workflow(workflow)
        assert "Invalid workflow" not in ui.page_text() and "valid version" not in ui.page_text(), name

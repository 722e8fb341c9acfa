"""The pack in the real ComfyUI frontend (headless Chromium): extension, node defs, UI workflows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.frontend import chromium_path
from harness.host import ServerHost

REPO = Path(__file__).resolve().parent.parent
UI_WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
HOST_0_33_NODES = {"LoadMoGeModel", "MoGeInference"}
API_WORKFLOWS = REPO / "workflows" / "api"


def api_twin_path(ui_path: Path) -> Path:
    return API_WORKFLOWS / f"{ui_path.stem}_api.json"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed (./dev test installs it)"),
]


# The pack's node colours, as web/ex4d.js sets them
NODE_COLORS = dict(re.findall(r'\b(color|bgcolor)[\s:=]+"(#[0-9a-f]{6})"', (REPO / "web" / "ex4d.js").read_text()))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server of this module's ``ui`` (tests/conftest.py): an empty input folder, so the workflows' file
    widgets keep the values they were saved with."""
    with ServerHost(tmp_path_factory.mktemp("frontend")) as server:
        yield server


@pytest.fixture(autouse=True)
def no_pack_errors(request):
    """Every test fails on a console error or uncaught exception that names the pack."""
    if "ui" not in request.fixturenames:
        yield
        return
    ui = request.getfixturevalue("ui")
    since = len(ui.console)
    yield
    assert not ui.pack_errors(since), f"frontend {ui.frontend_version()}: {ui.pack_errors(since)}"


def _normalise(prompt: dict) -> dict:
    out = {}
    for node_id, node in prompt.items():
        inputs = {k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
                  for k, v in node["inputs"].items()}
        out[str(node_id)] = {"class_type": node["class_type"], "inputs": inputs}
    return out


def test_extension_loads_once_without_errors(ui):
    """The host serves every .js file under web/ as an extension, the camera editor's modules too: only the two
    entry files register one (the modules only export), each once."""
    served = [path for path in ui.server.get_json("/extensions") if "/camera_editor/" in path]
    assert served and all(ui.page.request.get(ui.server.url + path).ok for path in served)
    assert sorted(name for name in ui.extensions() if name.startswith("EX-4D")) == ["EX-4D.cameraEditor", "EX-4D.types"]
    assert not ui.pack_errors(), ui.pack_errors()


def test_pack_nodes_wear_the_pack_colours(ui):
    """On a node added by hand and on every pack node of a shipped workflow; in Nodes 2.0 the node's component
    shows the background colour."""
    added = ui.evaluate("""() => { const n = LiteGraph.createNode("EX4DRenderViews"); app.graph.add(n);
                                   return {color: n.color, bgcolor: n.bgcolor}; }""")
    assert set(NODE_COLORS) == {"color", "bgcolor"} and added == NODE_COLORS, (NODE_COLORS, added)
    ui.load_workflow(json.loads((REPO / "workflows" / "ex4d_example.json").read_text()))
    info = ui.server.get_json("/object_info")
    colours = ui.evaluate("() => app.graph._nodes.map((n) => [n.type, {color: n.color, bgcolor: n.bgcolor}])")
    pack = [c for t, c in colours if info[t].get("category", "").startswith("EX-4D")]
    assert pack and all(c == NODE_COLORS for c in pack), colours
    assert all(c != NODE_COLORS for t, c in colours if not info[t].get("category", "").startswith("EX-4D"))
    if ui.nodes2:
        shown = ui.evaluate("""() => [...document.querySelectorAll("[data-node-id]")].map((e) =>
            [...e.querySelectorAll("*"), e].map((c) => getComputedStyle(c).backgroundColor))""")
        rgb = "rgb({}, {}, {})".format(*bytes.fromhex(NODE_COLORS["bgcolor"][1:]))
        assert sum(rgb in node for node in shown) == len(pack), (rgb, shown)


def skip_without_host_nodes(ui, path: Path) -> None:
    """Skip a workflow built on host nodes this ComfyUI lacks (the core-depth workflow's MoGe: 0.33 and later)."""
    info = ui.server.get_json("/object_info")
    workflow = json.loads(path.read_text())
    lacking = sorted({n["type"] for n in workflow["nodes"] if n["type"] in HOST_0_33_NODES and n["type"] not in info})
    if lacking:
        pytest.skip(f"{path.name} needs the host's {lacking} nodes (ComfyUI 0.33 and later)")


@pytest.mark.parametrize("path", UI_WORKFLOWS, ids=[p.stem for p in UI_WORKFLOWS])
def test_ui_workflow_lays_out_without_overlaps(ui, path):
    skip_without_host_nodes(ui, path)
    ui.load_workflow(json.loads(path.read_text()))
    boxes = ui.node_boxes()
    overlaps = [(a, b) for i, (a, box_a) in enumerate(boxes.items()) for b, box_b in list(boxes.items())[i + 1:]
                if _overlap(box_a, box_b)]
    types = dict(ui.evaluate("() => app.graph._nodes.map((n) => [String(n.id), n.type])"))
    assert not overlaps, [(types[a], boxes[a], types[b], boxes[b]) for a, b in overlaps]


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


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
    skip_without_host_nodes(ui, path)
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

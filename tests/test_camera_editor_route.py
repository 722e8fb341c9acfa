"""The camera editor's description (GET /ex4d/camera/editor): the nodes, their handles and the widgets those
write, the projection and the mask come from Python, and the browser code copies none of them."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from ex4d.camera.lens import FAR_PLANE, NEAR_PLANE
from ex4d.render import ALPHA_THRESHOLD

WEB = Path(__file__).resolve().parent.parent / "web"
EDITOR_NODES = {"EX4DCameraPreset", "EX4DCameraOrbit", "EX4DCameraDolly", "EX4DCameraKeyframes", "EX4DCameraPreview"}
PLACES = {"first_eye", "last_eye", "target", "key_eyes", "key_target"}
DRAGS = {"sphere", "axis", "plane"}
ROLES = {"yaw", "pitch", "fraction", "depth", "keyframes"}


@pytest.fixture(scope="module")
def config(host) -> dict:
    """The description as the pack the host loaded answers it (the pack's package name is the host's choice)."""
    package = host.node_classes["EX4DCameraPreset"].__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}._camera_editor").editor_config()


def test_the_projection_and_mask_are_the_renderers(config):
    assert config["projection"] == {"near": NEAR_PLANE, "far": FAR_PLANE}
    assert config["mask"] == {"alpha_threshold": ALPHA_THRESHOLD / 255}


def test_handles_write_widgets_their_node_has(host, config):
    assert set(config["nodes"]) == EDITOR_NODES
    for node_id, node in config["nodes"].items():
        schema = {spec.id for spec in host.node_classes[node_id].GET_SCHEMA().inputs}
        takes = set(host.node_classes[node_id].path_widgets()) if node["path"] else set()
        assert node["radius"] is None or node["radius"] in takes, node_id
        for handle in node["handles"]:
            assert handle["at"] in PLACES and handle["drag"] in DRAGS and set(handle["widgets"]) <= ROLES, handle
            assert set(handle["widgets"].values()) <= takes & schema, (node_id, handle)
    assert not config["nodes"]["EX4DCameraPreview"]["handles"]  # read-only


def test_web_code_copies_no_node_or_widget_name(config):
    """No node id or widget name in a string of web/ (nor a template like `yaw_${kind}`): the editor takes them
    from the description."""
    nodes = config["nodes"].values()
    names = set(config["nodes"]) | {node["radius"] for node in nodes if node["radius"]} | {
        name for node in nodes for handle in node["handles"] for name in handle["widgets"].values()}
    prefixes = {name.split("_")[0] + "_" for name in names if "_" in name}
    written = [re.escape(name) + "[\"'`]" for name in names] + [re.escape(prefix) + r"\$\{" for prefix in prefixes]
    quoted = re.compile("[\"'`](?:" + "|".join(written) + ")")
    copies = {path.name: quoted.findall(path.read_text()) for path in WEB.rglob("*.js")}
    assert not {name: found for name, found in copies.items() if found}

"""The pack's HTTP routes for the camera editor (web/camera_editor/).

``GET /ex4d/camera/editor`` answers :func:`~._camera_editor.editor_config`: the nodes with an editor, their
handles and the widgets those write, the projection and the mask (the page asks once, when it opens).

``GET /ex4d/camera/scene/<key>`` answers a scene a camera node made when it last ran (its ``ex4d_scene`` UI
output names the key; :class:`~._camera_scenes.SceneCache`), as ``application/octet-stream``, or 404.

``POST /ex4d/camera/path`` with ``{"node": <node id>, "clip": {frames, width, height, radius[, focal, focals]},
"inputs": {widget: value}}`` answers the path as :func:`~ex4d.camera.files.to_json_dict` gives it, computed by the node's own
``path`` classmethod (the one its ``execute`` calls) on widgets its schema allows (the checks ``execute`` runs
first, :func:`~._validation.check_inputs`), or ``400 {"error": ...}`` with the node's own message.
The clip is what the node reported when it last ran (its ``ex4d_scene`` UI output).

``POST /ex4d/camera/scene`` with ``{"node": <node id>, "prompt": <API prompt of the page's graph>}`` answers the
``ex4d_scene`` entry (scene key and clip) of a camera node that ran earlier on the same depth and frames as
that node (:func:`~._camera_scenes.source_key`), for the editor's "load scene" action, or ``404 {"error": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from aiohttp import web

from ..ex4d.camera import PUBLISHED_FOCAL, Clip, Lens, to_json_dict
from ..ex4d.camera.lens import intrinsics_matrix
from ._camera_editor import editor_config
from ._camera_scenes import SCENES, source_key
from ._validation import check_inputs
from .camera import PATH_NODES

EDITOR_ROUTE = "/ex4d/camera/editor"
PATH_ROUTE = "/ex4d/camera/path"
SCENE_ROUTE = "/ex4d/camera/scene/{key}"
SCENE_LOAD_ROUTE = "/ex4d/camera/scene"


def request_clip(clip: dict) -> Clip:
    """The clip a path request names: the node's ``ex4d_scene`` entry, with the depth's lens ("focal", and
    "focals" where the source zooms; 500 px, as published, where the entry has none)."""
    frames, width, height = int(clip["frames"]), int(clip["width"]), int(clip["height"])
    focal = float(clip.get("focal") or PUBLISHED_FOCAL)
    focals = clip.get("focals")
    lens = Lens(width, height, intrinsics_matrix(width, height, focal),
                None if focals is None else np.asarray(focals, dtype=np.float32))
    return Clip(frames, lens, float(clip["radius"]))


def path_response(body: object) -> tuple[int, dict]:
    """(HTTP status, JSON body) for a request body; no I/O, so tests call it directly."""
    if not isinstance(body, dict):
        return 400, {"error": "body: expected a JSON object {node, clip, inputs}"}
    nodes = {node.define_schema().node_id: node for node in PATH_NODES}
    node = nodes.get(body.get("node"))
    if node is None:
        return 400, {"error": f"node: expected one of {sorted(nodes)}, got {body.get('node')!r}"}
    clip, inputs = body.get("clip"), body.get("inputs")
    if not isinstance(clip, dict) or not isinstance(inputs, dict):
        return 400, {"error": "clip, inputs: expected JSON objects; run the node once so the editor knows the clip"}
    try:
        clip = request_clip(clip)
    except (KeyError, TypeError, ValueError) as e:
        return 400, {"error": f"clip: expected frames, width, height and radius, and the lens's focal / focals "
                     f"where the node reported them ({e})"}
    names = node.path_widgets()
    missing = [name for name in names if name not in inputs and name not in node.optional_widgets()]
    if missing:
        return 400, {"error": f"inputs: missing {missing}"}
    widgets = {name: inputs[name] for name in names if name in inputs}
    try:
        check_inputs(node, widgets)
        path = node.path(clip, **widgets)
    except (TypeError, ValueError) as e:
        return 400, {"error": str(e)}
    return 200, to_json_dict(path)


def scene_response(body: object) -> tuple[int, dict]:
    """(HTTP status, JSON body) for a "load scene" request; no I/O, so tests call it directly."""
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), dict):
        return 400, {"error": "body: expected a JSON object {node, prompt}"}
    node = body["prompt"].get(str(body.get("node")))
    if not isinstance(node, dict):
        return 400, {"error": f"node: {body.get('node')!r} is not in the prompt"}
    key = source_key(body["prompt"], body.get("node"))
    if key is None:
        return 404, {"error": "depth: not connected; connect the clip's depth, then load the scene"}
    entry = SCENES.of_source(key)
    if entry is None:
        return 404, {"error": "scene: no camera node has run on this depth yet (or the server restarted, or the "
                     "depth's inputs changed); queue the graph once"}
    return 200, entry


def json_route(respond: Callable[[object], tuple[int, dict]]):
    """An aiohttp handler answering a JSON body with ``respond(body)``: (HTTP status, JSON answer)."""

    async def handler(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body: not JSON"}, status=400)
        status, answer = respond(body)
        return web.json_response(answer, status=status)

    return handler


async def camera_editor(request: web.Request) -> web.Response:
    return web.json_response(editor_config())


async def camera_scene(request: web.Request) -> web.Response:
    data = SCENES.get(request.match_info["key"])
    if data is None:
        return web.json_response({"error": "scene: not in memory (the server restarted or it is old); queue the "
                                  "graph again"}, status=404)
    return web.Response(body=data, content_type="application/octet-stream")


_registered: list[object] = []


def register() -> None:
    """Add the route to the running server's table (before it starts serving; once per server). An in-process
    host has no HTTP server: nothing to do there."""
    try:
        from server import PromptServer
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    routes = getattr(instance, "routes", None)
    if routes is None or instance in _registered:
        return
    routes.get(EDITOR_ROUTE)(camera_editor)
    routes.post(PATH_ROUTE)(json_route(path_response))
    routes.get(SCENE_ROUTE)(camera_scene)
    routes.post(SCENE_LOAD_ROUTE)(json_route(scene_response))
    _registered.append(instance)

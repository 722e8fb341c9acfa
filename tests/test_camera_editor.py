"""The camera editor (web/camera_editor/) in the real frontend against the real server: it opens with the
example workflow, draws the clip's scene, scrubs, drags keyframes into the widget, and the queued path is the
path it showed; its projection and handles are the server's."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from ex4d.camera.lens import projection_matrix
from harness.frontend import chromium_path
from harness.host import ServerHost

REPO = Path(__file__).resolve().parent.parent
FRAMES = 49
KEYS = [{"frame": 0, "yaw": 0}, {"frame": 24, "yaw": 30, "pitch": 10}, {"frame": 48, "yaw": 60}]
EDITOR_NODES = ("EX4DCameraPreset", "EX4DCameraOrbit", "EX4DCameraDolly", "EX4DCameraKeyframes", "EX4DCameraPreview")
REDRAW_LIMIT_MS = 150  # the goal is 50 (about 30 measured); the bound leaves room for a loaded CI machine

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed (./dev test installs it)"),
]


def editor_prompt() -> dict:
    clip = {"frame_load_cap": FRAMES, "skip_first_frames": 0, "select_every_nth": 1}
    return {
        "1": {"class_type": "EX4DLoadVideo",
              "inputs": {"video": "clip.mp4", **clip, "target_fps": 0.0,
                         "resize": "published (multiple of 64, long side capped)", "max_resolution": 1024,
                         "multiple": 64}},
        "2": {"class_type": "EX4DLoadDepth", "inputs": {"path": "depth.npz", "content": "depth", **clip}},
        "3": {"class_type": "EX4DCameraKeyframes",
              "inputs": {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": 500.0,
                         "keyframes": json.dumps(KEYS), "easing": "ease_in_out"}},
        "4": {"class_type": "EX4DSaveCameraPath",
              "inputs": {"camera": ["3", 0], "filename_prefix": "ex4d/editor", "format": "ex4d npz"}},
        "5": {"class_type": "EX4DCameraPreview",
              "inputs": {"camera": ["3", 0], "depth": ["2", 0], "frames": ["1", 0], "size": 64}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server of this module's ``ui`` (tests/conftest.py): the example clip and its depth in its input
    folder."""
    work = tmp_path_factory.mktemp("editor")
    (work / "input").mkdir()
    for f in (REPO / "assets" / "example").iterdir():
        shutil.copy(f, work / "input" / f.name)
    with ServerHost(work) as server:
        yield server


@pytest.fixture(autouse=True)
def no_pack_errors(ui):
    """Every test fails on a console error or uncaught exception that names the pack."""
    since = len(ui.console)
    yield
    assert not ui.pack_errors(since), f"frontend {ui.frontend_version()}: {ui.pack_errors(since)}"


def load(ui, prompt: dict) -> None:
    """Open an API prompt and lay it out so that no node covers another (in Nodes 2.0 nodes outgrow the places
    the frontend gives an API prompt's nodes, and one would take the mouse over another's editor)."""
    ui.load_api(prompt)
    ui.arrange(both_renderers=False)


def saved_camera(ui, after: set[str]) -> Path:
    """The camera file Save Camera Path writes next (waits for it)."""
    folder = ui.server.work_dir / "output" / "ex4d"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = sorted({p.name for p in folder.glob("editor_*.npz")} - after) if folder.is_dir() else []
        if new:
            time.sleep(0.2)  # written whole before the prompt ends; give the write a moment
            return folder / new[-1]
        time.sleep(0.1)
    raise TimeoutError(f"no camera file was saved:\n{ui.server.log()[-3000:]}")


def written(ui) -> set[str]:
    folder = ui.server.work_dir / "output" / "ex4d"
    return {p.name for p in folder.glob("editor_*.npz")} if folder.is_dir() else set()


def test_example_workflow_opens_with_an_editor_on_each_camera_node(ui):
    workflow = json.loads((REPO / "workflows" / "ex4d_example.json").read_text())
    ui.load_workflow(workflow)
    editors = ui.evaluate("() => app.graph._nodes.filter((n) => n.ex4dEditor).map((n) => n.type)")
    assert sorted(editors) == sorted(t for t in ui.graph_node_types() if t in EDITOR_NODES) and editors
    # the editor is no widget value: neither the saved workflow nor the queued prompt holds it
    saved = {n["id"]: n["widgets_values"] for n in ui.serialize()["nodes"] if n["type"] in EDITOR_NODES}
    assert saved == {n["id"]: n["widgets_values"] for n in workflow["nodes"] if n["type"] in EDITOR_NODES}
    assert all("ex4d_camera_editor" not in node["inputs"] for node in ui.to_api().values())
    status = ui.evaluate("() => app.graph._nodes.find((n) => n.ex4dEditor).ex4dEditor.status")
    assert "Queue" in status  # before a run it says how to get the scene


def test_editor_draws_scrubs_drags_and_queues_the_path_it_shows(ui):
    load(ui, editor_prompt())
    ui.show_node(3)
    before = written(ui)
    ui.queue()
    editor = ui.wait_for_camera_editor(3)
    queued = np.load(saved_camera(ui, before))["extrinsics"]
    assert editor["frames"] == FRAMES and editor["status"] == ""
    np.testing.assert_array_equal(np.array(editor["extrinsics"], np.float32), queued)

    # the scene is drawn: the overview has the coloured mesh, the new view at frame 0 is the whole source frame
    assert editor["canvas"]["lit"] > 0.1
    assert editor["inset"]["lit"] > 0.95 and max(editor["inset"]["mean"]) - min(editor["inset"]["mean"]) > 10
    fractions = editor["fractions"]
    assert len(fractions) == FRAMES and fractions[0] == 1 and fractions[-1] < 0.8  # 60 degrees: much to invent

    # scrubbing (the slider, as a user moves it) changes the new view: less of it is visible, the rest black
    ui.evaluate("""() => { const s = app.graph.getNodeById(3).ex4dEditor.slider; s.value = "40";
                           s.dispatchEvent(new Event("input")); }""")
    scrubbed = ui.camera_editor(3)
    assert scrubbed["frame"] == 40 and scrubbed["inset"]["hash"] != editor["inset"]["hash"]
    assert editor["inset"]["black"] < 0.05 and scrubbed["inset"]["black"] > 0.2
    assert abs(scrubbed["inset"]["black"] - (1 - fractions[40])) < 0.1  # the strip counts what the view shows

    # dragging a keyframe's eye writes the key into the widget and moves the path, without queueing
    handle = next(h for h in scrubbed["handles"] if h["kind"] == "eye" and h["index"] == 1)
    ui.page.mouse.move(handle["x"], handle["y"])
    ui.page.mouse.down()
    ui.page.mouse.move(handle["x"] + 40, handle["y"] - 25, steps=6)
    ui.page.mouse.up()
    dragged = ui.wait_for_camera_editor(3)
    keys = json.loads(ui.widget_value(3, "keyframes"))
    assert [k["frame"] for k in keys] == [0, 24, 48] and keys[0] == KEYS[0] and keys[2] == KEYS[2]
    assert abs(keys[1]["yaw"] - KEYS[1]["yaw"]) > 2 and "distance" in keys[1]
    moved = next(h for h in dragged["handles"] if h["kind"] == "eye" and h["index"] == 1)
    assert abs(moved["x"] - handle["x"] - 40) < 3 and abs(moved["y"] - handle["y"] + 25) < 3  # under the mouse
    shown = np.array(dragged["extrinsics"], np.float32)
    assert not np.array_equal(shown, queued)

    # a widget change redraws at once too, and a bad value is the node's own message, not a console error
    ui.evaluate("""() => { const w = app.graph.getNodeById(3).widgets.find((w) => w.name === "easing");
                           w.value = "linear"; w.callback?.(w.value); }""")
    eased = ui.wait_for_camera_editor(3)
    assert eased["extrinsics"] != dragged["extrinsics"]
    # so do values set as a loaded workflow sets them (node.configure calls no widget callback)
    ui.evaluate("""() => { const node = app.graph.getNodeById(3), data = node.serialize();
                           data.widgets_values = data.widgets_values.map((v) => (v === "linear" ? "ease_in" : v));
                           node.configure(data); }""")
    configured = ui.wait_for_camera_editor(3)
    assert ui.widget_value(3, "easing") == "ease_in" and configured["extrinsics"] != eased["extrinsics"]
    shown = np.array(configured["extrinsics"], np.float32)

    # queueing runs the path the editor showed
    before = written(ui)
    ui.queue()
    np.testing.assert_array_equal(np.load(saved_camera(ui, before))["extrinsics"], shown)

    # Camera Path Preview shows the same path over the same scene (read-only: no handles)
    ui.page.wait_for_function("(shown) => JSON.stringify(app.graph.getNodeById(5).ex4dEditor.path?.json.extrinsics)"
                              " === JSON.stringify(shown)", arg=configured["extrinsics"], timeout=60_000)
    preview = ui.wait_for_camera_editor(5)
    assert preview["handles"] == [] and preview["canvas"]["lit"] > 0.1

    ui.evaluate("""() => { const w = app.graph.getNodeById(3).widgets.find((w) => w.name === "keyframes");
                           w.value = "[{frame: 0}]"; w.callback?.(w.value); }""")
    ui.page.wait_for_function("() => app.graph.getNodeById(3).ex4dEditor.status.startsWith('keyframes:')",
                              timeout=30_000)
    ui.evaluate("""() => { const w = app.graph.getNodeById(3).widgets.find((w) => w.name === "keyframes");
                           w.value = JSON.stringify([{frame: 0, yaw: 0}, {frame: 48, yaw: 20}]);
                           w.callback?.(w.value); }""")
    ui.page.wait_for_function("() => app.graph.getNodeById(3).ex4dEditor.status === ''", timeout=30_000)


def test_wheel_zooms_the_editor_not_the_graph(ui):
    prompt = editor_prompt()
    prompt["3"]["inputs"]["focal"] = 450.0  # a prompt of its own: the host runs it (nothing cached) and shows it
    load(ui, prompt)
    ui.show_node(3)
    ui.queue()
    ui.wait_for_camera_editor(3)
    box = ui.evaluate("""() => { const r = app.graph.getNodeById(3).ex4dEditor.canvas.getBoundingClientRect();
                                 return [r.left + r.width / 2, r.top + r.height / 2]; }""")
    state = "() => [app.graph.getNodeById(3).ex4dEditor.view.distance, app.canvas.ds.scale]"
    distance, scale = ui.evaluate(state)
    ui.page.mouse.move(*box)
    ui.page.mouse.wheel(0, 300)
    ui.page.wait_for_timeout(300)
    zoomed, zoomed_scale = ui.evaluate(state)
    assert zoomed > distance * 1.2 and zoomed_scale == scale, (distance, zoomed, scale, zoomed_scale)
    # off the editor (over the bare canvas) the wheel zooms the graph again
    bare = ui.evaluate("""() => [[1550, 950], [1550, 300], [900, 950], [1200, 600]].find(([x, y]) =>
                                    document.elementFromPoint(x, y) === app.canvas.canvas)""")
    ui.page.mouse.move(*bare, steps=4)
    ui.page.mouse.wheel(0, 300)
    ui.page.wait_for_timeout(300)
    after, after_scale = ui.evaluate(state)
    assert after == zoomed and after_scale != scale, (zoomed, after, scale, after_scale)


def test_redraw_is_interactive(ui):
    """Full redraws (overview, path, new view) of the example clip's scene in software GL: ms per frame."""
    load(ui, editor_prompt())
    ui.show_node(3)
    ui.queue()
    ui.wait_for_camera_editor(3)
    timing = ui.time_camera_editor(3, 20)
    print(f"\ncamera editor redraw: median {timing['median']:.1f} ms, max {timing['max']:.1f} ms "
          f"({timing['width']}x{timing['height']} canvas, {timing['faces']:.0f} faces)")
    assert timing["faces"] > 10_000 and timing["median"] < REDRAW_LIMIT_MS, timing


def handles_prompt() -> dict:
    """An Orbit that runs (its path is saved) and a dolly-zoom Dolly that never runs (nothing uses it)."""
    prompt = editor_prompt()
    common = {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": 500.0, "easing": "linear",
              "hold_start": 0, "hold_end": 0}
    prompt["3"] = {"class_type": "EX4DCameraOrbit",
                   "inputs": {**common, "yaw_start": 0.0, "yaw_end": 40.0, "pitch_start": 0.0, "pitch_end": 0.0,
                              "distance": 0.0}}
    prompt["7"] = {"class_type": "EX4DCameraDolly",
                   "inputs": {**common, "start": 0.0, "end": 0.5, "zoom": "dolly-zoom (keep subject size)"}}
    del prompt["5"], prompt["6"]
    return prompt


def drag(ui, handle: dict, dx: float, dy: float) -> None:
    ui.page.mouse.move(handle["x"], handle["y"])
    ui.page.mouse.down()
    ui.page.mouse.move(handle["x"] + dx, handle["y"] + dy, steps=6)
    ui.page.mouse.up()


def test_orbit_and_dolly_handles_load_scene_and_dolly_zoom(ui):
    load(ui, handles_prompt())
    ui.show_node(3, scale=0.8)
    before = written(ui)
    ui.queue()
    orbit = ui.wait_for_camera_editor(3)
    np.testing.assert_array_equal(np.array(orbit["extrinsics"], np.float32),
                                  np.load(saved_camera(ui, before))["extrinsics"])

    # dragging the Orbit's last eye sideways rewrites yaw_end (the eye stays on the orbit, under the mouse)
    zoom_out = "(id) => { const e = app.graph.getNodeById(id).ex4dEditor; e.view.distance *= 1.8; e.draw(); }"
    ui.evaluate(zoom_out, 3)  # every handle inside the canvas
    handles = ui.camera_editor(3)["handles"]
    assert sorted(h["kind"] for h in handles) == ["end", "start", "target"]
    end = next(h for h in handles if h["kind"] == "end")
    drag(ui, end, -30, 0)
    dragged = ui.wait_for_camera_editor(3)
    assert abs(ui.widget_value(3, "yaw_end") - 40.0) > 2 and ui.widget_value(3, "yaw_start") == 0.0
    assert dragged["extrinsics"] != orbit["extrinsics"]
    moved = next(h for h in dragged["handles"] if h["kind"] == "end")
    assert abs(moved["x"] - end["x"] + 30) < 6, (moved, end)

    # the Dolly never ran: no scene until "load scene" finds the one its depth and frames gave the Orbit
    ui.show_node(7, scale=0.8)
    assert not ui.camera_editor(7)["hasScene"]
    ui.evaluate("() => app.graph.getNodeById(7).ex4dEditor.loadButton.click()")
    ui.wait_for_camera_editor(7)
    ui.evaluate(zoom_out, 7)
    dolly = ui.camera_editor(7)
    assert dolly["status"] == "" and dolly["frames"] == FRAMES
    # the dolly-zoom: each frame's focal follows the eye's distance to the target (the route sends them)
    focals = np.array(dolly["focals"])
    assert focals[0] == 500.0 and focals[-1] == pytest.approx(250.0, rel=1e-5) and np.all(np.diff(focals) < 0)

    # dragging the Dolly's last eye (along the view axis) rewrites end
    end = next(h for h in dolly["handles"] if h["kind"] == "end")
    start = next(h for h in dolly["handles"] if h["kind"] == "start")
    drag(ui, end, (start["x"] - end["x"]) * 0.5, (start["y"] - end["y"]) * 0.5)  # half way back to the start
    ui.wait_for_camera_editor(7)
    assert 0.1 < ui.widget_value(7, "end") < 0.4, ui.widget_value(7, "end")
    assert ui.widget_value(7, "start") == 0.0


def test_load_scene_inside_a_subgraph(ui):
    """A camera node moved into a subgraph is queued as "<subgraph node>:<id>": "load scene" asks for that id and
    gets the scene of its depth (not another node's that has its local id in the root graph)."""
    prompt = editor_prompt()
    prompt["7"] = {"class_type": "EX4DCameraDolly",
                   "inputs": {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": 500.0, "start": 0.0,
                              "end": 0.5, "easing": "linear", "hold_start": 0, "hold_end": 0}}
    load(ui, prompt)
    ui.queue()
    ui.wait_for_camera_editor(3)
    ids = ui.evaluate("""async () => {
        const subgraph = app.graph.convertToSubgraph(new Set([app.graph.getNodeById(7)]));
        window.ex4dInner = (subgraph.node ?? subgraph).subgraph.nodes[0];
        await window.ex4dInner.ex4dEditor.loadSceneFromServer();
        return Object.keys((await app.graphToPrompt()).output); }""")
    assert any(":" in i for i in ids), ids  # the Dolly now lives in a subgraph
    inner = ui.evaluate("() => ({ status: window.ex4dInner.ex4dEditor.status, scene: !!window.ex4dInner.ex4dEditor.scene })")
    assert inner == {"status": "", "scene": True}, inner


FLIP_Y = np.diag([1.0, -1.0, 1.0, 1.0])  # WebGL shows NDC y = -1 at the bottom: the editor shows the image upright


def new_view_clips(ui, node_id: int, frames: list[int]) -> list[np.ndarray]:
    """The editor's world -> clip matrices of these frames' new views, row-major."""
    clips = ui.evaluate("""([id, frames]) => { const e = app.graph.getNodeById(id).ex4dEditor;
                           return frames.map((i) => Array.from(e.newViewClip(e.path.cameras[i]))); }""",
                        [node_id, frames])
    return [np.array(c, np.float64).reshape(4, 4).T for c in clips]


def published_clips(editor: dict, frames: list[int], **planes) -> list[np.ndarray]:
    """What Render Views projects these frames with (ex4d.camera.lens.projection_matrix), flipped as shown."""
    width, height = editor["size"]
    return [FLIP_Y @ projection_matrix(width, height, editor["focals"][i], **planes) @ np.array(editor["extrinsics"][i])
            for i in frames]


def test_projection_and_handles_come_from_the_server(ui):
    """The new view is Render Views' projection with the library's clip planes, and the handles are those the
    server names: a page whose editor description (GET /ex4d/camera/editor) says otherwise shows that instead."""
    load(ui, handles_prompt())
    ui.queue()
    editor = {**ui.wait_for_camera_editor(3), "size": ui.evaluate(
        "() => { const p = app.graph.getNodeById(3).ex4dEditor.path; return [p.width, p.height]; }")}
    frames = [0, FRAMES // 2, FRAMES - 1]
    for shown, expected in zip(new_view_clips(ui, 3, frames), published_clips(editor, frames), strict=True):
        np.testing.assert_allclose(shown, expected, rtol=1e-5, atol=1e-6)
    kinds = "() => app.graph.getNodeById(3).ex4dEditor.handles().map((h) => h.kind)"
    assert ui.evaluate(kinds) == ["start", "end", "target"]

    described = ui.server.get_json("/ex4d/camera/editor")
    described["projection"] = {"near": 0.25, "far": 40.0}
    orbit = described["nodes"]["EX4DCameraOrbit"]
    orbit["handles"] = [h for h in orbit["handles"] if h["kind"] == "target"]
    with ui.other_page({"/ex4d/camera/editor": described}):
        load(ui, handles_prompt())
        ui.show_node(3, scale=0.8)
        ui.evaluate("() => app.graph.getNodeById(3).ex4dEditor.loadButton.click()")  # the scene the run above made
        other = ui.wait_for_camera_editor(3)
        assert other["status"] == "" and ui.evaluate(kinds) == ["target"]
        for shown, expected in zip(new_view_clips(ui, 3, frames), published_clips(editor, frames, near=0.25, far=40.0),
                                   strict=True):
            np.testing.assert_allclose(shown, expected, rtol=1e-5, atol=1e-6)

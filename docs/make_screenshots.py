"""Screenshots of the camera editor on the example clip (docs/camera_editor_*.png), through the real frontend.

    .venv/bin/python docs/make_screenshots.py [name ...]   (e.g. dolly_zoom; default: all)
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.frontend import NO_FIRST_RUN, Frontend  # noqa: E402
from harness.host import ServerHost  # noqa: E402
from tests.test_camera_editor import editor_prompt  # noqa: E402


def node_clip(ui: Frontend, node_id: int) -> dict:
    """The node's rectangle on the page (title bar included)."""
    return ui.evaluate("""(id) => { const n = app.graph.getNodeById(id), ds = app.canvas.ds;
        const box = app.canvas.canvas.getBoundingClientRect(), title = LiteGraph.NODE_TITLE_HEIGHT;
        return { x: box.left + (n.pos[0] + ds.offset[0]) * ds.scale - 4,
                 y: box.top + (n.pos[1] - title + ds.offset[1]) * ds.scale - 4,
                 width: n.size[0] * ds.scale + 8, height: (n.size[1] + title) * ds.scale + 8 }; }""", node_id)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "input").mkdir()
        for f in (REPO / "assets" / "example").iterdir():
            shutil.copy(f, work / "input" / f.name)
        prompt = editor_prompt()
        prompt["7"] = {"class_type": "EX4DCameraPreset",
                       "inputs": {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": 500.0,
                                  "preset": "crane", "angle": 90.0, "zoom_fraction": 0.5, "easing": "ease_in_out",
                                  "hold_start": 4, "hold_end": 4, "amount": 0.4}}
        prompt["8"] = {"class_type": "EX4DSaveCameraPath",
                       "inputs": {"camera": ["7", 0], "filename_prefix": "ex4d/crane", "format": "json"}}
        prompt["9"] = {"class_type": "EX4DCameraDolly",
                       "inputs": {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": 500.0, "start": 0.0,
                                  "end": 0.6, "easing": "ease_in_out", "hold_start": 0, "hold_end": 0,
                                  "zoom": "dolly-zoom (keep subject size)"}}
        prompt["10"] = {"class_type": "EX4DSaveCameraPath",
                        "inputs": {"camera": ["9", 0], "filename_prefix": "ex4d/vertigo", "format": "json"}}
        wanted = set(sys.argv[1:])

        def shot(name: str, node_id: int) -> None:
            if not wanted or name in wanted:
                ui.page.screenshot(path=str(REPO / "docs" / f"camera_editor_{name}.png"), clip=node_clip(ui, node_id))
        with ServerHost(work) as server, Frontend(server, NO_FIRST_RUN) as ui:
            ui.load_api(prompt)
            ui.queue()
            ui.show_node(3)
            ui.wait_for_camera_editor(3)
            ui.wait_for_camera_editor(7)
            ui.evaluate("() => { const e = app.graph.getNodeById(3).ex4dEditor; e.view.yaw = 25; e.view.pitch = 30; e.draw(); }")
            shot("keyframes", 3)
            ui.evaluate("() => app.graph.getNodeById(3).ex4dEditor.setFrame(40)")
            shot("frame40", 3)
            ui.show_node(7)
            ui.evaluate("() => { const e = app.graph.getNodeById(7).ex4dEditor; e.view.yaw = 70; e.view.pitch = 10; e.setFrame(48); }")
            shot("crane", 7)
            ui.show_node(9)
            ui.wait_for_camera_editor(9)
            ui.evaluate("() => { const e = app.graph.getNodeById(9).ex4dEditor; e.view.yaw = 60; e.view.pitch = 20; e.setFrame(48); }")
            shot("dolly_zoom", 9)
            timing = ui.time_camera_editor(3, 30)
            print(json.dumps(timing))


if __name__ == "__main__":
    main()

"""The real ComfyUI frontend in headless Chromium (Playwright driving Debian's browser).

    with ServerHost(work) as server, Frontend(server) as ui:
        ui.load_api(api_prompt)        # as the frontend does when a user drops an API JSON
        workflow = ui.serialize()      # UI-format workflow
        prompt = ui.to_api()           # what the frontend would queue
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.host import ServerHost

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("EX4D_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


# The first-run template browser covers the canvas (and takes its mouse events): off where a test drives it.
NO_FIRST_RUN = {"Comfy.TutorialCompleted": True}
# The frontend's two node renderers: the classic canvas and "Modern Node Design (Nodes 2.0)" (Vue components).
RENDERERS = {"classic": {"Comfy.VueNodes.Enabled": False}, "nodes2": {"Comfy.VueNodes.Enabled": True}}
# What names the pack in a console message: its extension names, files and node types.
PACK_MARKERS = re.compile(r"ex-?4d|camera_editor", re.IGNORECASE)
ONLINE_REGISTRY = "https://api.comfy.org/"
ROUTE_REFUSED = "error: Failed to load resource: the server responded with a status of 400"
# reads a node's camera editor in the page: `(PROBE).inspect(editor)`, `(PROBE).timeRedraw(editor, count)`
CAMERA_EDITOR_PROBE = (Path(__file__).parent / "camera_editor_probe.js").read_text()


def answering(answer: Any) -> Callable[[Route], None]:
    """A Playwright route handler that answers ``answer`` as JSON."""
    return lambda route: route.fulfill(json=answer)


class Frontend:
    def __init__(self, server: ServerHost, settings: dict[str, Any] | None = None):
        """``settings``: user settings stored on the server before the page opens (e.g. :data:`NO_FIRST_RUN`)."""
        self.server = server
        self.settings = dict(settings or {})
        self.console: list[str] = []
        self._pw = self._browser = self.page = None

    def __enter__(self) -> Frontend:
        from playwright.sync_api import sync_playwright

        for name, value in self.settings.items():  # the route answers with an empty body
            request = urllib.request.Request(f"{self.server.url}/settings/{name}", data=json.dumps(value).encode(),
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=30).close()
        path = chromium_path()
        if path is None:
            raise RuntimeError("Chromium not found: install Debian's chromium or set EX4D_CHROMIUM")
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        self.page = self._open_page()
        return self

    def _open_page(self, answers: dict[str, Any] | None = None) -> Page:
        """A new page of the frontend, its console kept, once the frontend has registered the nodes. ``answers``:
        JSON the page gets in place of the server's answer, by route path (e.g. ``/ex4d/camera/editor``)."""
        page = self._browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text} [{m.location.get('url', '')}]"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e} [{e.stack}]"))
        for path, answer in (answers or {}).items():
            page.route(f"**{path}", answering(answer))
        page.goto(self.server.url)
        page.wait_for_function(
            "() => window.app && window.app.graph && window.LiteGraph"
            " && Object.keys(LiteGraph.registered_node_types).length > 100",
            timeout=120_000,
        )
        return page

    @contextmanager
    def other_page(self, answers: dict[str, Any]) -> Iterator[None]:
        """Drive a second page, whose server answers ``answers`` replaces (see :meth:`_open_page`), until the
        block ends; then this one again."""
        main, self.page = self.page, self._open_page(answers)
        try:
            yield
        finally:
            self.page.close()
            self.page = main

    def __exit__(self, *exc) -> None:
        if self._browser:
            self._browser.close()
        if self._pw:
            self._pw.stop()

    def pack_errors(self, since: int = 0) -> list[str]:
        """Console errors and uncaught exceptions that name the pack (its extensions, files or node types), from
        console line ``since`` on. Not counted: the frontend's own look-ups of the pack's nodes in the online
        registry (this machine reaches none), and the camera routes' 400 answer to a bad widget value, which the
        node shows as its message (the browser logs every 4xx answer)."""
        return [line for line in self.console[since:]
                if line.startswith(("error:", "pageerror:")) and PACK_MARKERS.search(line)
                and not line.rsplit(" [", 1)[-1].startswith(ONLINE_REGISTRY)
                and not (line.startswith(ROUTE_REFUSED) and "/ex4d/camera/" in line)]

    def frontend_version(self) -> str:
        return self.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ ?? 'unknown'")

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def registered(self, node_type: str) -> bool:
        return bool(self.evaluate("(t) => !!LiteGraph.registered_node_types[t]", node_type))

    def extensions(self) -> list[str]:
        return self.evaluate("() => app.extensions.map((e) => e.name)")

    def load_api(self, prompt: dict[str, Any]) -> None:
        self.evaluate("async (p) => { await app.loadApiJson(p, 'workflow.json'); }", prompt)

    def load_workflow(self, workflow: dict[str, Any]) -> None:
        self.evaluate("async (w) => { await app.loadGraphData(w, true, false); }", workflow)

    def bypass(self, node_ids: list[str]) -> None:
        """Set these nodes to bypass (Ctrl+B): the queued graph runs as if they were not there."""
        self.evaluate("(ids) => { for (const id of ids) app.graph.getNodeById(id).mode = 4; }",
                      [int(i) for i in node_ids])

    def arrange(self, margin: int = 80, both_renderers: bool = True) -> None:
        """Lay the graph out in columns (the frontend's own arrange) with room around every node at its size in
        this renderer and, with ``both_renderers``, the other one too (measured by switching to it): the classic
        canvas's (its title included) and Nodes 2.0's. The nodes keep their classic sizes; in Nodes 2.0 their
        content sizes them."""
        self.evaluate("() => app.canvas.draw(true, true)")  # the classic size counts the title once drawn
        classic = self.evaluate("""() => Object.fromEntries(app.graph._nodes.map((n) => { const c = n.computeSize();
            return [n.id, [Math.max(n.size[0], c[0]), Math.max(n.size[1], c[1])]]; }))""")
        other = {}
        if both_renderers:
            self.set_setting("Comfy.VueNodes.Enabled", not self.nodes2)
            other = self.node_boxes(nodes2=not self.nodes2)
            self.set_setting("Comfy.VueNodes.Enabled", self.nodes2)
        this = self.node_boxes()
        self.evaluate(
            """([classic, boxes, margin]) => { const title = LiteGraph.NODE_TITLE_HEIGHT;
                for (const n of app.graph._nodes) {
                  const fits = boxes.map((b) => b[n.id] ?? [0, 0, 0, title]);
                  n.setSize([Math.max(classic[n.id][0], ...fits.map((b) => b[2])),
                             Math.max(classic[n.id][1], ...fits.map((b) => b[3] - title))]);
                }
                app.graph.arrange(margin);
                for (const n of app.graph._nodes) n.setSize(classic[n.id]);
                app.graph.setDirtyCanvas(true, true); }""", [classic, [other, this], margin])
        if self.nodes2:  # older Nodes 2.0 layouts (1.32) take node positions only when a graph opens
            self.load_workflow(self.serialize())

    def set_setting(self, name: str, value: Any) -> None:
        """Change a user setting in the open page, as the settings dialog does."""
        self.evaluate("async ([name, value]) => { await app.extensionManager.setting.set(name, value); }",
                      [name, value])
        self.page.wait_for_timeout(500)

    def serialize(self) -> dict[str, Any]:
        # through JSON in the page: properties that are undefined there must be absent, not null
        return self.evaluate("() => JSON.parse(JSON.stringify(app.graph.serialize()))")

    def page_text(self) -> str:
        """Everything the page shows as text (dialogs, toasts, alerts included)."""
        return self.evaluate("() => document.body.innerText")

    def to_api(self) -> dict[str, Any]:
        return self.evaluate("async () => (await app.graphToPrompt()).output")

    def graph_node_types(self) -> list[str]:
        return self.evaluate("() => app.graph._nodes.map((n) => n.type)")

    @property
    def nodes2(self) -> bool:
        return bool(self.settings.get("Comfy.VueNodes.Enabled"))

    def node_boxes(self, nodes2: bool | None = None) -> dict[str, list[float]]:
        """Every node's box in graph coordinates, [x, y, width, height] with its title, as the renderer lays the
        open graph out (``nodes2``: which renderer is on, by default the one the page opened with): in Nodes 2.0
        the box of the node's component (its content decides its size), waited for until it stays put."""
        if not (self.nodes2 if nodes2 is None else nodes2):
            return self.evaluate("() => Object.fromEntries(app.graph._nodes.map((n) => [n.id, [...n.getBounding()]]))")
        script = """() => {
            const box = app.canvas.canvas.getBoundingClientRect(), ds = app.canvas.ds;
            const elements = [...document.querySelectorAll("[data-node-id]")];
            if (elements.length < app.graph._nodes.length) return null;
            return Object.fromEntries(elements.map((e) => { const r = e.getBoundingClientRect();
                return [e.dataset.nodeId, [(r.left - box.left) / ds.scale - ds.offset[0],
                        (r.top - box.top) / ds.scale - ds.offset[1], r.width / ds.scale, r.height / ds.scale]]; })); }"""
        previous = None
        for _ in range(40):
            boxes = self.evaluate(script)
            if boxes is not None and boxes == previous:
                return boxes
            previous = boxes
            self.page.wait_for_timeout(250)
        raise TimeoutError(f"the Nodes 2.0 layout did not settle: {previous}")

    def screenshot(self, path: str) -> None:
        self.page.screenshot(path=path)

    # ----- the pack's camera editor (web/camera_editor/)
    def queue(self) -> None:
        """Queue the open graph as the Queue button does."""
        self.evaluate("async () => { await app.queuePrompt(0, 1); }")

    def show_node(self, node_id: str | int, scale: float = 1.0) -> None:
        """Put a node at the top left of the canvas at ``scale`` (DOM widgets show only on screen)."""
        self.evaluate(
            """([id, scale]) => { const node = app.graph.getNodeById(id); const ds = app.canvas.ds;
                 ds.scale = scale; ds.offset[0] = 90 / scale - node.pos[0]; ds.offset[1] = 110 / scale - node.pos[1];
                 app.canvas.setDirty(true, true); app.canvas.draw(true, true); }""",
            [int(node_id), scale])

    def camera_editor(self, node_id: str | int) -> dict[str, Any]:
        """What the node's camera editor shows: see ``inspect`` in harness/camera_editor_probe.js."""
        return self.evaluate(f"(id) => ({CAMERA_EDITOR_PROBE}).inspect(app.graph.getNodeById(id).ex4dEditor)",
                             int(node_id))

    def wait_for_camera_editor(self, node_id: str | int, timeout_ms: float = 60_000) -> dict[str, Any]:
        """Wait until the editor holds the scene, the path of the widgets' current values and the visibility of
        every frame."""
        self.page.wait_for_function(
            f"(id) => {{ const editor = app.graph.getNodeById(id)?.ex4dEditor;"
            f" const e = editor && ({CAMERA_EDITOR_PROBE}).inspect(editor);"
            " return e && e.hasScene && e.frames > 0 && e.settled && e.visibilityDone; }", arg=int(node_id),
            timeout=timeout_ms)
        return self.camera_editor(node_id)

    def time_camera_editor(self, node_id: str | int, count: int = 20) -> dict[str, Any]:
        """Full redraws of the node's camera editor: median and max ms, canvas size, faces."""
        return self.evaluate(f"([id, count]) => ({CAMERA_EDITOR_PROBE})"
                             ".timeRedraw(app.graph.getNodeById(id).ex4dEditor, count)", [int(node_id), count])

    def widget_value(self, node_id: str | int, name: str) -> Any:
        return self.evaluate("([id, name]) => app.graph.getNodeById(id).widgets.find((w) => w.name === name).value",
                             [int(node_id), name])

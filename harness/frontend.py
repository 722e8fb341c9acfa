"""The real ComfyUI frontend in headless Chromium (Playwright driving Debian's browser).

    with ServerHost(work) as server, Frontend(server) as ui:
        ui.load_api(api_prompt)        # as the frontend does when a user drops an API JSON
        workflow = ui.serialize()      # UI-format workflow
        prompt = ui.to_api()           # what the frontend would queue
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from harness.host import ServerHost

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("EX4D_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class Frontend:
    def __init__(self, server: ServerHost):
        self.server = server
        self.console: list[str] = []
        self._pw = self._browser = self.page = None

    def __enter__(self) -> Frontend:
        from playwright.sync_api import sync_playwright

        path = chromium_path()
        if path is None:
            raise RuntimeError("Chromium not found: install Debian's chromium or set EX4D_CHROMIUM")
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        self.page = self._browser.new_page(viewport={"width": 1600, "height": 1000})
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(self.server.url)
        self.page.wait_for_function(
            "() => window.app && window.app.graph && window.LiteGraph"
            " && Object.keys(LiteGraph.registered_node_types).length > 100",
            timeout=120_000,
        )
        return self

    def __exit__(self, *exc) -> None:
        if self._browser:
            self._browser.close()
        if self._pw:
            self._pw.stop()

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

    def arrange(self) -> None:
        self.evaluate("() => { app.graph.arrange(80); app.graph.setDirtyCanvas(true, true); }")

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

    def screenshot(self, path: str) -> None:
        self.page.screenshot(path=path)

// EX-4D camera editor: registers the editor (web/camera_editor/) on the nodes the server names. The modules of
// web/camera_editor/ only export; this file is the one that registers anything.
//
// Which nodes carry an editor, their handles, the projection and the mask come from the server
// (GET /ex4d/camera/editor), asked once before any node is made. The editor follows the node's widgets through
// their callbacks (every change a user makes, in either renderer, calls them) and through node.configure (values
// a loaded workflow sets, which call no callback). A script that sets `widget.value` itself calls
// `widget.callback(widget.value)` after it, as the frontend does.
import { app } from "../../scripts/app.js";
import { CameraEditor } from "./camera_editor/editor.js";
import { fetchEditorConfig } from "./camera_editor/server.js";

const WIDGET_NAME = "ex4d_camera_editor";
const EDITOR_HEIGHT = 420;
const EDITOR_MIN_WIDTH = 520;

let config = null;

// calls `after` once the original method has run
function chain(object, method, after) {
  const original = object[method];
  object[method] = function (...args) {
    const result = original?.apply(this, args);
    after.apply(this, args);
    return result;
  };
}

function attachEditor(node) {
  const editor = new CameraEditor(node, config, WIDGET_NAME);
  const widget = node.addDOMWidget(WIDGET_NAME, "ex4d_camera_editor", editor.root, {
    serialize: false, hideOnZoom: false,
    getValue: () => undefined, setValue: () => {},
    getMinHeight: () => EDITOR_HEIGHT, getHeight: () => EDITOR_HEIGHT,
  });
  widget.serialize = false; // not in widgets_values, not in the queued prompt
  node.ex4dEditor = editor;
  const [width, height] = node.computeSize();
  node.setSize([Math.max(width, EDITOR_MIN_WIDTH), Math.max(height, node.size?.[1] ?? 0)]);
  for (const w of node.widgets ?? []) if (w !== widget) chain(w, "callback", () => editor.requestPath());
  chain(node, "onConfigure", () => editor.requestPath());
  chain(node, "onExecuted", (output) => {
    editor.showRun(output?.ex4d_scene?.[0], output?.ex4d_path?.[0])
      .catch((e) => editor.setStatus(`scene: ${e.message}`));
  });
}

app.registerExtension({
  name: "EX-4D.cameraEditor",
  async init() {
    config = await fetchEditorConfig();
  },
  nodeCreated(node) {
    if (config?.nodes[node.comfyClass]) attachEditor(node);
  },
});

// EX-4D frontend extension: link colours for the pack's types and the pack's node colours.
import { app } from "../../scripts/app.js";

const EX4D_TYPES = {
  EX4D_DEPTH: "#5b8def",
  EX4D_DWMESH: "#9b6bd6",
  EX4D_CAMERA: "#e0a030",
  EX4D_ADAPTER: "#d0506a",
  EX4D_DEPTH_MODEL: "#3f9f8f",
};
const EX4D_NODE_COLORS = { color: "#2a2a44", bgcolor: "#33334f" };

app.registerExtension({
  name: "EX-4D.types",
  async setup() {
    const colors = app.canvas?.default_connection_color_byType;
    if (colors) Object.assign(colors, EX4D_TYPES);
  },
  // Per node, not on the prototype: newer frontends keep a node's colours in per-node state behind accessors,
  // and older ones declare them as instance fields that shadow the prototype. A colour saved in a workflow is
  // applied after this and wins.
  nodeCreated(node) {
    const category = node.constructor?.nodeData?.category ?? node.constructor?.category;
    if (!category?.startsWith("EX-4D")) return;
    node.color ??= EX4D_NODE_COLORS.color;
    node.bgcolor ??= EX4D_NODE_COLORS.bgcolor;
  },
});

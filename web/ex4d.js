// EX-4D frontend extension: node colours for the pack's types and a badge on its nodes.
import { app } from "../../scripts/app.js";

const EX4D_TYPES = {
  EX4D_DEPTH: "#5b8def",
  EX4D_DWMESH: "#9b6bd6",
  EX4D_CAMERA: "#e0a030",
  EX4D_ADAPTER: "#d0506a",
  EX4D_DEPTH_MODEL: "#3f9f8f",
};

app.registerExtension({
  name: "EX-4D.types",
  async setup() {
    const colors = app.canvas?.default_connection_color_byType;
    if (colors) Object.assign(colors, EX4D_TYPES);
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.category?.startsWith("EX-4D")) {
      nodeType.prototype.color = "#2a2a44";
      nodeType.prototype.bgcolor = "#33334f";
    }
  },
});

// The editor's elements: the overview canvas, the frame slider with its label and the "load scene" button,
// the visibility strip and a status line. Events stay in the editor: the graph under it gets none.
import { captureWheel } from "./controls.js";

const styled = (tag, style, properties = {}) => {
  const el = Object.assign(document.createElement(tag), properties);
  Object.assign(el.style, style);
  return el;
};

export function buildPanel() {
  const root = styled("div", { display: "flex", flexDirection: "column", gap: "3px", width: "100%", height: "100%",
    boxSizing: "border-box", fontSize: "11px", color: "#ccc", fontFamily: "sans-serif" },
  { className: "ex4d-camera-editor" });
  const canvas = styled("canvas", { width: "100%", flex: "1 1 auto", minHeight: "0", background: "#15151c",
    borderRadius: "4px", cursor: "grab", touchAction: "none" });
  const row = styled("div", { display: "flex", alignItems: "center", gap: "6px" });
  const slider = styled("input", { flex: "1 1 auto" },
    { type: "range", min: "0", max: "0", value: "0", title: "Frame: the new view at this frame" });
  const label = styled("span", { minWidth: "150px" });
  const loadButton = styled("button", { fontSize: "11px", padding: "1px 6px", cursor: "pointer" }, {
    type: "button", textContent: "load scene",
    title: "Show the clip's scene without queueing: the scene a camera node made on the same depth earlier" });
  row.append(slider, label, loadButton);
  const strip = styled("canvas", { width: "100%", height: "22px", flex: "0 0 22px", borderRadius: "3px" },
    { title: "Visible fraction per frame: the darker and redder, the more the model must invent" });
  const statusLine = styled("div", { minHeight: "14px", whiteSpace: "nowrap", overflow: "hidden",
    textOverflow: "ellipsis" });
  root.append(canvas, row, strip, statusLine);
  for (const el of [root, canvas, strip, slider, loadButton]) {
    el.addEventListener("pointerdown", (e) => e.stopPropagation());
    el.addEventListener("wheel", (e) => e.stopPropagation(), { passive: true });
  }
  captureWheel(root);
  return { root, canvas, slider, label, loadButton, strip, statusLine };
}

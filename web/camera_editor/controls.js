// The overview camera (orbit / pan / zoom around a pivot) and the mouse: dragging a handle, orbiting, panning,
// zooming with the wheel.
import { add, cross, lookAt, multiply, normalize, perspective, scale, sub, transform } from "./maths.js";
import { HANDLE_RADIUS_PX, dragPoint } from "./handles.js";

const FOV = 45 * Math.PI / 180;

export function overviewCamera(view, width, height) {
  const yaw = view.yaw * Math.PI / 180, pitch = view.pitch * Math.PI / 180;
  const offset = [Math.sin(yaw) * Math.cos(pitch), -Math.sin(pitch), -Math.cos(yaw) * Math.cos(pitch)];
  const distance = view.distance ?? 4;
  const eye = add(view.pivot, scale(offset, distance));
  const up = [0, -1, 0]; // world y points down
  const clip = multiply(perspective(FOV, width / height, distance * 0.01, distance * 100), lookAt(eye, view.pivot, up));
  const forward = normalize(sub(view.pivot, eye));
  const right = normalize(cross(forward, up));
  return { clip, eye, forward, right, up: cross(right, forward), fov: FOV, aspect: width / height };
}

// the view that frames a scene: orbit around its middle (the far wall left out), the source camera in the picture
export function framingView(scene) {
  const p = scene.positions, { rows, cols } = scene;
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (let r = 1; r < rows - 1; r++) for (let c = 1; c < cols - 1; c++) {
    const i = (r * cols + c) * 3;
    for (let k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], p[i + k]); hi[k] = Math.max(hi[k], p[i + k]); }
  }
  if (!Number.isFinite(lo[0])) return null;
  lo[2] = Math.min(lo[2], 0);
  return { pivot: scale(add(lo, hi), 0.5), distance: 0.95 * Math.hypot(...sub(hi, lo)) };
}

export function toScreen(camera, point, canvas) { // world -> CSS pixels in the canvas
  const c = transform(camera.clip, point);
  if (c[3] <= 0) return null;
  return [(c[0] / c[3] + 1) / 2 * canvas.clientWidth, (1 - c[1] / c[3]) / 2 * canvas.clientHeight];
}

function ray(camera, x, y, canvas) { // CSS pixel -> world ray from the overview eye
  const nx = x / canvas.clientWidth * 2 - 1, ny = 1 - y / canvas.clientHeight * 2;
  const t = Math.tan(camera.fov / 2);
  return normalize(add(camera.forward, add(scale(camera.right, nx * t * camera.aspect), scale(camera.up, ny * t))));
}

export function bindMouse(editor) {
  const canvas = editor.canvas;
  let drag = null;
  const camera = () => overviewCamera(editor.view, canvas.clientWidth, canvas.clientHeight);
  canvas.addEventListener("pointerdown", (e) => {
    if (!editor.path && !editor.scene) return;
    const box = canvas.getBoundingClientRect();
    const near = editor.screenHandles().find((h) => Math.hypot(h.x - e.clientX, h.y - e.clientY) <= HANDLE_RADIUS_PX);
    canvas.setPointerCapture(e.pointerId);
    if (near) {
      const handle = editor.handles().find((h) => h.kind === near.kind && h.index === near.index);
      drag = { mode: "handle", handle, start: handle.at, camera: camera(), box };
    } else {
      drag = { mode: e.button === 2 || e.shiftKey ? "pan" : "orbit", x: e.clientX, y: e.clientY };
    }
    canvas.style.cursor = "grabbing";
    e.preventDefault();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    if (drag.mode === "handle") {
      const dir = ray(drag.camera, e.clientX - drag.box.left, e.clientY - drag.box.top, canvas);
      const point = dragPoint(drag, dir, editor.radius());
      if (point) { drag.last = point; editor.moveHandle(drag.handle, point); }
      return;
    }
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    drag.x = e.clientX; drag.y = e.clientY;
    const view = editor.view;
    if (drag.mode === "orbit") {
      view.yaw -= dx * 0.4;
      view.pitch = Math.max(-89, Math.min(89, view.pitch + dy * 0.4));
    } else {
      const c = camera();
      const k = (view.distance ?? 4) * 2 * Math.tan(c.fov / 2) / canvas.clientHeight;
      view.pivot = add(view.pivot, add(scale(c.right, -dx * k), scale(c.up, dy * k)));
    }
    editor.draw();
  });
  const end = () => { drag = null; canvas.style.cursor = "grab"; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("wheel", (e) => {
    editor.view.distance = (editor.view.distance ?? 4) * Math.exp(e.deltaY * 0.001);
    e.preventDefault();
    editor.draw();
  }, { passive: false });
}

// Nodes 2.0 forwards the wheel to the graph (in the capture phase, before the editor sees it) unless the
// wheel is over an element marked data-capture-wheel that holds the focused element. The editor takes the
// focus while the pointer is over it, unless the user is typing somewhere, and gives it back on leaving.
export function captureWheel(root) {
  root.dataset.captureWheel = "true";
  root.tabIndex = -1;
  root.style.outline = "none";
  let previous = null;
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  root.addEventListener("pointerenter", () => {
    const active = document.activeElement;
    if (root.contains(active) || typing(active)) return;
    previous = active;
    root.focus({ preventScroll: true });
  });
  root.addEventListener("pointerdown", () => {
    if (!root.contains(document.activeElement)) root.focus({ preventScroll: true });
  });
  root.addEventListener("pointerleave", () => {
    if (document.activeElement !== root) return;
    if (previous?.isConnected && previous !== document.body) previous.focus({ preventScroll: true });
    else root.blur();
    previous = null;
  });
}

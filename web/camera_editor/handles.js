// The handles of a node's overview, as the server describes them (GET /ex4d/camera/editor: where each sits, how
// the mouse moves it, which widgets it writes), and what a drag writes into those widgets.
import { add, dot, scale, sub, yawPitch } from "./maths.js";

export const HANDLE_RADIUS_PX = 9;
const round = (v, digits) => Number(v.toFixed(digits));

// [{kind, index, at, spec}]: index is the keyframe's for key_eyes, else 0 / the last frame / -1 (the target)
export function placeHandles(specs, path, radius, keys) {
  if (!path || !specs.length) return [];
  const cameras = path.cameras, n = cameras.length;
  const keyTarget = () => (keys.find((k) => Array.isArray(k.target))?.target ?? [0, 0, radius]).map(Number);
  const at = {
    first_eye: (spec) => [{ kind: spec.kind, index: 0, at: cameras[0].eye, spec }],
    last_eye: (spec) => [{ kind: spec.kind, index: n - 1, at: cameras[n - 1].eye, spec }],
    target: (spec) => [{ kind: spec.kind, index: -1, at: [0, 0, radius], spec }],
    key_eyes: (spec) => keys.map((k, i) => ({ kind: spec.kind, index: i, spec,
      at: cameras[Math.min(n - 1, Math.max(0, Math.round(Number(k.frame) || 0)))].eye })),
    key_target: (spec) => [{ kind: spec.kind, index: -1, at: keyTarget(), spec }],
  };
  return specs.flatMap((spec) => at[spec.at]?.(spec) ?? []);
}

function onAxis(camera, dir) { // the point of the optical (z) axis nearest to the ray
  const w0 = camera.eye, b = dir[2], d = dot(dir, w0), e = w0[2];
  const denom = 1 - b * b;
  return denom < 1e-9 ? null : [0, 0, (e - b * d) / denom];
}

function onSphere(drag, dir, radius) { // the ray's hit on the sphere of the eye's distance, the one nearer the handle
  const c = drag.camera, target = [0, 0, radius];
  const r = Math.hypot(...sub(drag.handle.at, target));
  const m = sub(c.eye, target), b = dot(m, dir), q = dot(m, m) - r * r, disc = b * b - q;
  if (disc < 0) return null;
  const hits = [-b - Math.sqrt(disc), -b + Math.sqrt(disc)].filter((t) => t > 0).map((t) => add(c.eye, scale(dir, t)));
  const last = drag.last ?? drag.handle.at;
  return hits.length ? hits.reduce((a, h) => (Math.hypot(...sub(h, last)) < Math.hypot(...sub(a, last)) ? h : a)) : null;
}

function onPlane(drag, dir) { // in the plane through the handle facing the overview camera
  const c = drag.camera, denom = dot(dir, c.forward);
  if (Math.abs(denom) < 1e-6) return null;
  return add(c.eye, scale(dir, dot(sub(drag.start, c.eye), c.forward) / denom));
}

// where a dragged handle goes for the overview ray `dir`: drag = {handle, camera, start, last}
export function dragPoint(drag, dir, radius) {
  const how = drag.handle.spec.drag;
  if (how === "axis") return onAxis(drag.camera, dir);
  if (how === "sphere") return onSphere(drag, dir, radius) ?? onPlane(drag, dir);
  return onPlane(drag, dir);
}

// keep each key in the form it was written: an eye, or yaw / pitch / distance around its target
function movedKeys(keys, handle, point, radius) {
  if (handle.kind === "target" || handle.index < 0) {
    for (const k of keys) k.target = point.map((v) => round(v, 4));
    return keys;
  }
  const key = keys[handle.index];
  if (!key) return null;
  if (Array.isArray(key.eye)) {
    key.eye = point.map((v) => round(v, 4));
    return keys;
  }
  const target = Array.isArray(key.target) ? key.target.map(Number) : [0, 0, radius];
  const angles = yawPitch(sub(point, target), key.yaw);
  if (!angles) return null;
  Object.assign(key, { yaw: round(angles.yaw, 2), pitch: round(angles.pitch, 2), distance: round(angles.distance, 4) });
  return keys;
}

// the widget values a handle moved to `point` writes: [[widget name, value, decimals]]
export function handleWrites(handle, point, editor) {
  const w = handle.spec.widgets, radius = editor.radius();
  if (w.depth) return [[w.depth, Math.max(0.01, point[2]), 4]];
  if (w.fraction) return [[w.fraction, point[2] / radius, 3]];
  if (w.yaw) {
    const angles = yawPitch(sub(point, [0, 0, radius]), editor.widget(w.yaw)?.value);
    return angles ? [[w.yaw, angles.yaw, 2], [w.pitch, angles.pitch, 2]] : [];
  }
  if (w.keyframes) {
    const keys = movedKeys(editor.keyframes(), handle, point, radius);
    return keys ? [[w.keyframes, JSON.stringify(keys), null]] : [];
  }
  return [];
}

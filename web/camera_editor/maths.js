// Vectors ([x, y, z] arrays) and 4x4 matrices (Float32Array, column-major as WebGL takes them).

export const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const scale = (a, s) => [a[0] * s, a[1] * s, a[2] * s];
export const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
export const normalize = (a) => scale(a, 1 / Math.hypot(a[0], a[1], a[2]));

export function multiply(a, b) {
  const out = new Float32Array(16);
  for (let c = 0; c < 4; c++)
    for (let r = 0; r < 4; r++)
      out[c * 4 + r] = a[r] * b[c * 4] + a[4 + r] * b[c * 4 + 1] + a[8 + r] * b[c * 4 + 2] + a[12 + r] * b[c * 4 + 3];
  return out;
}

export function fromRows(rows) { // row-major nested list (as Python writes it) -> column-major
  const out = new Float32Array(16);
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) out[c * 4 + r] = rows[r][c];
  return out;
}

export function transform(m, p) { // -> clip (x, y, z, w)
  const out = [0, 0, 0, 0];
  for (let r = 0; r < 4; r++) out[r] = m[r] * p[0] + m[4 + r] * p[1] + m[8 + r] * p[2] + m[12 + r];
  return out;
}

export function lookAt(eye, target, up) { // OpenGL camera: x right, y up, looking down -z
  const f = normalize(sub(target, eye));
  const s = normalize(cross(f, up));
  const u = cross(s, f);
  return fromRows([[...s, -dot(s, eye)], [...u, -dot(u, eye)], [...scale(f, -1), dot(f, eye)], [0, 0, 0, 1]]);
}

const depthRow = (near, far) => [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)];

export function perspective(fovY, aspect, near, far) {
  const t = 1 / Math.tan(fovY / 2);
  return fromRows([[t / aspect, 0, 0, 0], [0, t, 0, 0], depthRow(near, far), [0, 0, -1, 0]]);
}

// The published pinhole projection (ex4d.camera.lens.projection_matrix) with the clip planes the server names:
// clip y follows image rows, so row 0 is NDC y = -1.
export function publishedProjection(width, height, focal, { near, far }) {
  return fromRows([[2 * focal / width, 0, 0, 0], [0, -2 * focal / height, 0, 0], depthRow(near, far), [0, 0, -1, 0]]);
}

// WebGL puts NDC y = -1 at the bottom: this flip shows a published projection's image upright.
export const FLIP_Y = fromRows([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);

// An eye's offset from its target as yaw / pitch (degrees) and distance, the inverse of the library's spherical
// eye (yaw 0 / pitch 0 straight behind the target, on -z; world y points down). The yaw is taken nearest to
// `previousYaw`, so dragging an eye across the back of the orbit keeps turning the same way instead of jumping
// from +180 to -180. null when the eye sits on the target.
export function yawPitch(offset, previousYaw) {
  const distance = Math.hypot(...offset);
  if (distance < 1e-6) return null;
  let yaw = Math.atan2(offset[0], -offset[2]) * 180 / Math.PI;
  if (Number.isFinite(previousYaw)) yaw += 360 * Math.round((previousYaw - yaw) / 360);
  return { yaw, pitch: Math.asin(-offset[1] / distance) * 180 / Math.PI, distance };
}

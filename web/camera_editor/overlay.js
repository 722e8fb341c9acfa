// What the editor draws over the scene: the path (a line through the eyes, frusta along it, the current frame's
// in white), the target's cross and the handles; and the strip of each frame's visible fraction.
import { add, scale, sub } from "./maths.js";

const TARGET_COLOUR = [1, 0.9, 0.2];

export function frameColour(t) { // blue (first frame) -> green -> red (last), as the Python preview
  const blue = [0.15, 0.35, 1.0], green = [0.2, 0.9, 0.3], red = [1.0, 0.25, 0.15];
  const mix = (a, b, s) => a.map((v, i) => v + (b[i] - v) * s);
  return t < 0.5 ? mix(blue, green, 2 * t) : mix(green, red, 2 * t - 1);
}

function frustum(lines, path, camera, size, colour) {
  const hw = path.width / 2 / camera.focal * size, hh = path.height / 2 / camera.focal * size;
  const centre = add(camera.eye, scale(camera.forward, size));
  const corners = [[-1, -1], [1, -1], [1, 1], [-1, 1]].map(([a, b]) =>
    add(centre, add(scale(camera.right, a * hw), scale(camera.down, b * hh))));
  for (let i = 0; i < 4; i++) {
    lines.push({ from: camera.eye, to: corners[i], color: colour });
    lines.push({ from: corners[i], to: corners[(i + 1) % 4], color: colour });
  }
  const top = scale(add(corners[0], corners[1]), 0.5); // a tick on the image's top edge
  lines.push({ from: top, to: add(top, scale(camera.down, -0.4 * hh)), color: colour });
}

// lines [{from, to, color}] and points [{at, color}] for the path at `frame`, the target and the handles
export function pathOverlay(path, frame, handles, radius) {
  const lines = [], points = [];
  if (!path) return { lines, points };
  const n = path.cameras.length, last = Math.max(1, n - 1);
  const size = 0.2 * radius;
  for (let i = 1; i < n; i++) {
    lines.push({ from: path.cameras[i - 1].eye, to: path.cameras[i].eye, color: frameColour(i / last) });
  }
  const every = Math.max(1, Math.round(n / 8));
  for (let i = 0; i < n; i += every) frustum(lines, path, path.cameras[i], size, frameColour(i / last).map((v) => v * 0.8));
  frustum(lines, path, path.cameras[n - 1], size, frameColour(1));
  frustum(lines, path, path.cameras[frame], size, [1, 1, 1]);
  const target = handles.find((h) => h.kind === "target")?.at ?? [0, 0, radius];
  const arm = 0.05 * radius;
  for (let k = 0; k < 3; k++) {
    const d = [0, 0, 0]; d[k] = arm;
    lines.push({ from: sub(target, d), to: add(target, d), color: TARGET_COLOUR });
  }
  for (const h of handles) points.push({ at: h.at, color: h.kind === "target" ? TARGET_COLOUR : [1, 1, 1] });
  return { lines, points };
}

// each frame's visible fraction as a bar (the redder, the more the model must invent) and the current frame
export function drawStrip(strip, fractions, frame, frames) {
  const w = Math.max(1, strip.clientWidth), h = Math.max(1, strip.clientHeight);
  if (strip.width !== w || strip.height !== h) { strip.width = w; strip.height = h; }
  const ctx = strip.getContext("2d");
  ctx.fillStyle = "#15151c";
  ctx.fillRect(0, 0, w, h);
  if (!frames) return;
  for (let i = 0; i < fractions.length; i++) {
    const f = fractions[i];
    const x0 = Math.floor(i * w / frames), x1 = Math.floor((i + 1) * w / frames);
    ctx.fillStyle = `rgb(${Math.round(230 * (1 - f) + 40)}, ${Math.round(200 * f + 30)}, 60)`;
    ctx.fillRect(x0, h - f * h, Math.max(1, x1 - x0 - 1), f * h);
  }
  ctx.fillStyle = "#fff";
  ctx.fillRect(Math.floor((frame + 0.5) * w / frames) - 1, 0, 2, h);
}

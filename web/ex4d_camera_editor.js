// EX-4D camera editor: the clip's frame-0 DW-mesh, the camera path as frusta, the new view at a frame, and
// how much of each frame the renderer can see, on the camera-path nodes and on Camera Path Preview.
//
// The path is never computed here: the pack's route (POST /ex4d/camera/path) evaluates the node's widgets with
// the function the node runs, so the path shown is the path that runs. The scene (a downsampled DW-mesh of
// frame 0) is made when the node runs: its UI output names it, the pack's route serves it (compact binary).
// Our own WebGL2: no third-party code.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const PATH_NODES = new Set([
  "EX4DCameraPreset", "EX4DCameraOrbit", "EX4DCameraDolly", "EX4DCameraKeyframes",
]);
const PREVIEW_NODE = "EX4DCameraPreview";
const KEYFRAMES_NODE = "EX4DCameraKeyframes";
const ORBIT_NODE = "EX4DCameraOrbit";
const DOLLY_NODE = "EX4DCameraDolly";
const EDITABLE_NODES = new Set([KEYFRAMES_NODE, ORBIT_NODE, DOLLY_NODE]);
const PATH_ROUTE = "/ex4d/camera/path";
const SCENE_ROUTE = "/ex4d/camera/scene"; // GET <key>: a scene; POST {node, prompt}: the scene of that depth
const WIDGET_NAME = "ex4d_camera_editor";
const ALPHA_THRESHOLD = 125 / 255; // the renderer's mask: alpha > 125
const VISIBILITY_WIDTH = 96; // pixels across of the per-frame visibility renders
const HANDLE_RADIUS_PX = 9;
const EDITOR_HEIGHT = 420;

// ------------------------------------------------------------------ small math (column-major 4x4, WebGL's)

const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const scale = (a, s) => [a[0] * s, a[1] * s, a[2] * s];
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const normalize = (a) => scale(a, 1 / Math.hypot(a[0], a[1], a[2]));

function multiply(a, b) {
  const out = new Float32Array(16);
  for (let c = 0; c < 4; c++)
    for (let r = 0; r < 4; r++)
      out[c * 4 + r] = a[r] * b[c * 4] + a[4 + r] * b[c * 4 + 1] + a[8 + r] * b[c * 4 + 2] + a[12 + r] * b[c * 4 + 3];
  return out;
}

function fromRows(rows) { // row-major nested list (as Python writes it) -> column-major
  const out = new Float32Array(16);
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) out[c * 4 + r] = rows[r][c];
  return out;
}

function transform(m, p) { // -> clip (x, y, z, w)
  const out = [0, 0, 0, 0];
  for (let r = 0; r < 4; r++) out[r] = m[r] * p[0] + m[4 + r] * p[1] + m[8 + r] * p[2] + m[12 + r];
  return out;
}

function lookAt(eye, target, up) { // OpenGL camera: x right, y up, looking down -z
  const f = normalize(sub(target, eye));
  const s = normalize(cross(f, up));
  const u = cross(s, f);
  return fromRows([[...s, -dot(s, eye)], [...u, -dot(u, eye)], [...scale(f, -1), dot(f, eye)], [0, 0, 0, 1]]);
}

function perspective(fovY, aspect, near, far) {
  const t = 1 / Math.tan(fovY / 2);
  return fromRows([[t / aspect, 0, 0, 0], [0, t, 0, 0],
    [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)], [0, 0, -1, 0]]);
}

// The published projection (ex4d.camera.projection_matrix): clip y follows image rows, so row 0 is NDC y = -1;
// WebGL puts NDC y = -1 at the bottom, hence the flip to show the image upright. Near 0.01 instead of 0.001 for
// depth-buffer precision; x and y are the renderer's.
function publishedProjection(width, height, focal, near = 0.01, far = 1000) {
  return fromRows([[2 * focal / width, 0, 0, 0], [0, -2 * focal / height, 0, 0],
    [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)], [0, 0, -1, 0]]);
}

function frameColour(t) { // blue (first frame) -> green -> red (last), as the Python preview
  const blue = [0.15, 0.35, 1.0], green = [0.2, 0.9, 0.3], red = [1.0, 0.25, 0.15];
  const mix = (a, b, s) => a.map((v, i) => v + (b[i] - v) * s);
  return t < 0.5 ? mix(blue, green, 2 * t) : mix(green, red, 2 * t - 1);
}

// ------------------------------------------------------------------ data

function parseScene(buffer) {
  const magic = new TextDecoder().decode(new Uint8Array(buffer, 0, 8));
  if (magic !== "EX4DSCN1") throw new Error("not an EX-4D scene file");
  const headerLength = new DataView(buffer).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 12, headerLength)));
  let offset = 12 + headerLength;
  const positions = new Float32Array(buffer, offset, header.vertices * 3);
  offset += positions.byteLength;
  const colors = new Uint8Array(buffer, offset, header.vertices * 4);
  offset += colors.byteLength;
  const faces = new Uint32Array(buffer, offset, header.faces * 3);
  return { ...header, positions, colors, faces };
}

// The node's id in the queued prompt: its own id in the root graph, "<subgraph node>:...:<id>" inside subgraphs.
function executionId(node) {
  const find = (graph, prefix) => {
    for (const n of graph?.nodes ?? graph?._nodes ?? []) {
      if (n === node) return [...prefix, n.id];
      const inner = n.subgraph && find(n.subgraph, [...prefix, n.id]);
      if (inner) return inner;
    }
    return null;
  };
  return (find(app.graph, []) ?? [node.id]).join(":");
}

// An eye's offset from its target as yaw / pitch (degrees) and distance, the inverse of the library's spherical
// eye (yaw 0 / pitch 0 straight behind the target, on -z; world y points down). The yaw is taken nearest to
// `previousYaw`, so dragging an eye across the back of the orbit keeps turning the same way instead of jumping
// from +180 to -180. null when the eye sits on the target.
function yawPitch(offset, previousYaw) {
  const distance = Math.hypot(...offset);
  if (distance < 1e-6) return null;
  let yaw = Math.atan2(offset[0], -offset[2]) * 180 / Math.PI;
  if (Number.isFinite(previousYaw)) yaw += 360 * Math.round((previousYaw - yaw) / 360);
  return { yaw, pitch: Math.asin(-offset[1] / distance) * 180 / Math.PI, distance };
}

// Per-frame cameras from the route's (or the node's) path: extrinsics E (world -> OpenGL-style camera) and the
// frame's focal length ("focals" when the path zooms, e.g. a dolly-zoom; else the one of "intrinsics").
function parsePath(json) {
  const k = json.intrinsics;
  const cameras = json.extrinsics.map((rows, i) => {
    const e = fromRows(rows);
    const r = (i, j) => rows[i][j];
    const t = [rows[0][3], rows[1][3], rows[2][3]];
    const eye = [0, 1, 2].map((j) => -(r(0, j) * t[0] + r(1, j) * t[1] + r(2, j) * t[2]));
    return {
      extrinsics: e, eye, focal: json.focals?.[i] ?? k[0][0],
      right: [r(0, 0), r(0, 1), r(0, 2)], // image x in world
      down: [-r(1, 0), -r(1, 1), -r(1, 2)], // image y (rows) in world
      forward: [-r(2, 0), -r(2, 1), -r(2, 2)],
    };
  });
  return { width: json.width, height: json.height, cameras, json };
}

// ------------------------------------------------------------------ WebGL

const MESH_VS = `#version 300 es
in vec3 position; in vec4 color;
uniform mat4 clip;
out vec4 vColor;
void main() { vColor = color; gl_Position = clip * vec4(position, 1.0); }`;
const MESH_FS = `#version 300 es
precision highp float;
in vec4 vColor; uniform int mode; uniform float threshold;
out vec4 outColor;
void main() {
  bool visible = vColor.a > threshold;
  if (mode == 2) { outColor = vec4(visible ? 1.0 : 0.0, 0.0, 0.0, 1.0); return; }  // the renderer's mask
  outColor = vec4(mode == 1 && !visible ? vec3(0.0) : vColor.rgb, 1.0);  // 1: hidden faces black
}`;
const LINE_VS = `#version 300 es
in vec3 position; in vec4 color;
uniform mat4 clip; uniform float pointSize;
out vec4 vColor;
void main() { vColor = color; gl_Position = clip * vec4(position, 1.0); gl_PointSize = pointSize; }`;
const LINE_FS = `#version 300 es
precision highp float;
in vec4 vColor; out vec4 outColor;
void main() { outColor = vColor; }`;

function compile(gl, vs, fs) {
  const program = gl.createProgram();
  for (const [type, source] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    gl.attachShader(program, shader);
  }
  gl.bindAttribLocation(program, 0, "position");
  gl.bindAttribLocation(program, 1, "color");
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  const uniforms = {};
  for (const name of ["clip", "mode", "threshold", "pointSize"]) uniforms[name] = gl.getUniformLocation(program, name);
  return { program, uniforms };
}

class Renderer {
  constructor(canvas) {
    const gl = canvas.getContext("webgl2", { antialias: false, preserveDrawingBuffer: true });
    if (!gl) throw new Error("WebGL2 is not available in this browser");
    this.gl = gl;
    this.mesh = compile(gl, MESH_VS, MESH_FS);
    this.lines = compile(gl, LINE_VS, LINE_FS);
    this.sceneVao = null;
    this.lineVao = gl.createVertexArray();
    this.lineBuffers = [gl.createBuffer(), gl.createBuffer()];
    this.lineCount = 0;
  }

  setScene(scene) {
    const gl = this.gl;
    const vao = gl.createVertexArray();
    gl.bindVertexArray(vao);
    const position = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, position);
    gl.bufferData(gl.ARRAY_BUFFER, scene.positions, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 3, gl.FLOAT, false, 0, 0);
    const color = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, color);
    gl.bufferData(gl.ARRAY_BUFFER, scene.colors, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(1);
    gl.vertexAttribPointer(1, 4, gl.UNSIGNED_BYTE, true, 0, 0);
    // the overview leaves out the far wall (faces touching the pushed-back border); the new view keeps it
    const onBorder = (i) => { const r = Math.floor(i / scene.cols), c = i % scene.cols;
      return r === 0 || c === 0 || r === scene.rows - 1 || c === scene.cols - 1; };
    const inner = [];
    for (let f = 0; f < scene.faces.length; f += 3) {
      const a = scene.faces[f], b = scene.faces[f + 1], c = scene.faces[f + 2];
      if (!onBorder(a) && !onBorder(b) && !onBorder(c)) inner.push(a, b, c);
    }
    this.allFaces = gl.createBuffer();
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.allFaces);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, scene.faces, gl.STATIC_DRAW);
    this.innerFaces = gl.createBuffer();
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.innerFaces);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, new Uint32Array(inner), gl.STATIC_DRAW);
    gl.bindVertexArray(null);
    this.sceneVao = vao;
    this.counts = { all: scene.faces.length, inner: inner.length };
  }

  // lines: [{from, to, color}], points: [{at, color}]
  setOverlay(lines, points) {
    const gl = this.gl;
    const pos = [], col = [];
    for (const l of lines) { pos.push(...l.from, ...l.to); col.push(...l.color, 1, ...l.color, 1); }
    for (const p of points) { pos.push(...p.at); col.push(...p.color, 1); }
    gl.bindVertexArray(this.lineVao);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.lineBuffers[0]);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(pos), gl.DYNAMIC_DRAW);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.lineBuffers[1]);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(col), gl.DYNAMIC_DRAW);
    gl.enableVertexAttribArray(1);
    gl.vertexAttribPointer(1, 4, gl.FLOAT, false, 0, 0);
    gl.bindVertexArray(null);
    this.lineCount = lines.length * 2;
    this.pointCount = points.length;
  }

  drawScene(clip, mode, inner) {
    if (!this.sceneVao) return;
    const gl = this.gl;
    gl.useProgram(this.mesh.program);
    gl.uniformMatrix4fv(this.mesh.uniforms.clip, false, clip);
    gl.uniform1i(this.mesh.uniforms.mode, mode);
    gl.uniform1f(this.mesh.uniforms.threshold, ALPHA_THRESHOLD);
    gl.bindVertexArray(this.sceneVao);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, inner ? this.innerFaces : this.allFaces);
    gl.drawElements(gl.TRIANGLES, inner ? this.counts.inner : this.counts.all, gl.UNSIGNED_INT, 0);
    gl.bindVertexArray(null);
  }

  drawOverlay(clip) {
    const gl = this.gl;
    gl.useProgram(this.lines.program);
    gl.uniformMatrix4fv(this.lines.uniforms.clip, false, clip);
    gl.uniform1f(this.lines.uniforms.pointSize, 2 * HANDLE_RADIUS_PX - 4);
    gl.bindVertexArray(this.lineVao);
    if (this.lineCount) gl.drawArrays(gl.LINES, 0, this.lineCount);
    if (this.pointCount) gl.drawArrays(gl.POINTS, this.lineCount, this.pointCount);
    gl.bindVertexArray(null);
  }

  // Fraction of pixels the renderer will see (mask = 1) from each camera, at a small size.
  visibleFractions(clips, width, height) {
    const gl = this.gl;
    if (!this.sceneVao) return [];
    if (!this.target || this.target.width !== width || this.target.height !== height) {
      const fb = gl.createFramebuffer(), color = gl.createRenderbuffer(), depth = gl.createRenderbuffer();
      gl.bindRenderbuffer(gl.RENDERBUFFER, color);
      gl.renderbufferStorage(gl.RENDERBUFFER, gl.RGBA8, width, height);
      gl.bindRenderbuffer(gl.RENDERBUFFER, depth);
      gl.renderbufferStorage(gl.RENDERBUFFER, gl.DEPTH_COMPONENT24, width, height);
      gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
      gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.RENDERBUFFER, color);
      gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.DEPTH_ATTACHMENT, gl.RENDERBUFFER, depth);
      this.target = { fb, width, height, pixels: new Uint8Array(width * height * 4) };
    }
    const t = this.target;
    gl.bindFramebuffer(gl.FRAMEBUFFER, t.fb);
    gl.viewport(0, 0, width, height);
    gl.disable(gl.SCISSOR_TEST);
    gl.enable(gl.DEPTH_TEST);
    const out = [];
    for (const clip of clips) {
      gl.clearColor(0, 0, 0, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      this.drawScene(clip, 2, false);
      gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, t.pixels);
      let seen = 0;
      for (let i = 0; i < t.pixels.length; i += 4) seen += t.pixels[i] > 127 ? 1 : 0;
      out.push(seen / (width * height));
    }
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    return out;
  }
}

// ------------------------------------------------------------------ the editor

class CameraEditor {
  constructor(node) {
    this.node = node;
    this.editable = EDITABLE_NODES.has(node.comfyClass);
    this.isPathNode = PATH_NODES.has(node.comfyClass);
    this.scene = null; // parsed scene
    this.clip = null; // {frames, width, height, radius, focal, focals} the node reported (the depth's lens)
    this.path = null;
    this.frame = 0;
    this.fractions = [];
    this.view = { yaw: 35, pitch: 25, distance: null, pivot: [0, 0, 1] };
    this.request = { sequence: 0, inFlight: false, again: false, signature: null };
    this.status = "";
    this.lastDrawMs = null;
    this.build();
  }

  build() {
    const root = document.createElement("div");
    root.className = "ex4d-camera-editor";
    Object.assign(root.style, { display: "flex", flexDirection: "column", gap: "3px", width: "100%",
      height: "100%", boxSizing: "border-box", fontSize: "11px", color: "#ccc", fontFamily: "sans-serif" });
    const canvas = document.createElement("canvas");
    Object.assign(canvas.style, { width: "100%", flex: "1 1 auto", minHeight: "0", background: "#15151c",
      borderRadius: "4px", cursor: "grab", touchAction: "none" });
    const row = document.createElement("div");
    Object.assign(row.style, { display: "flex", alignItems: "center", gap: "6px" });
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", min: "0", max: "0", value: "0", title: "Frame: the new view at this frame" });
    slider.style.flex = "1 1 auto";
    const label = document.createElement("span");
    label.style.minWidth = "150px";
    const load = document.createElement("button");
    Object.assign(load, { type: "button", textContent: "load scene",
      title: "Show the clip's scene without queueing: the scene a camera node made on the same depth earlier" });
    Object.assign(load.style, { fontSize: "11px", padding: "1px 6px", cursor: "pointer" });
    load.addEventListener("click", () => this.loadSceneFromServer());
    row.append(slider, label, load);
    const strip = document.createElement("canvas");
    strip.title = "Visible fraction per frame: the darker and redder, the more the model must invent";
    Object.assign(strip.style, { width: "100%", height: "22px", flex: "0 0 22px", borderRadius: "3px" });
    const status = document.createElement("div");
    Object.assign(status.style, { minHeight: "14px", whiteSpace: "nowrap", overflow: "hidden", textOverflow: "ellipsis" });
    root.append(canvas, row, strip, status);
    for (const el of [root, canvas, strip, slider, load]) {
      el.addEventListener("pointerdown", (e) => e.stopPropagation());
      el.addEventListener("wheel", (e) => e.stopPropagation(), { passive: true });
    }
    captureWheel(root);
    Object.assign(this, { root, canvas, slider, label, strip, loadButton: load, statusLine: status });
    try {
      this.renderer = new Renderer(canvas);
    } catch (e) {
      this.renderer = null;
      this.setStatus(`camera editor unavailable: ${e.message}`);
    }
    slider.addEventListener("input", () => this.setFrame(Number(slider.value)));
    strip.addEventListener("pointerdown", (e) => {
      const n = this.path?.cameras.length ?? 0;
      if (!n) return;
      const r = strip.getBoundingClientRect();
      this.setFrame(Math.min(n - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * n))));
    });
    this.bindMouse();
    new ResizeObserver(() => this.draw()).observe(canvas);
    this.setStatus(this.isPathNode || this.node.comfyClass === PREVIEW_NODE
      ? "Queue the graph once: the clip's scene and path appear here." : "");
  }

  setStatus(text) { this.status = text; this.statusLine.textContent = text; }

  // ----- inputs
  widgetValues() {
    const values = {};
    for (const w of this.node.widgets ?? []) if (w.name && w.name !== WIDGET_NAME) values[w.name] = w.value;
    return values;
  }

  widget(name) { return this.node.widgets?.find((w) => w.name === name); }

  radius() {
    const r = Number(this.widget("radius")?.value ?? 0);
    return r > 0 ? r : this.clip?.radius ?? 1;
  }

  keyframes() {
    try {
      const keys = JSON.parse(this.widget("keyframes")?.value ?? "[]");
      return Array.isArray(keys) ? keys : [];
    } catch { return []; }
  }

  // ----- scene and path
  async loadScene(entry) {
    const response = await api.fetchApi(`${SCENE_ROUTE}/${encodeURIComponent(entry.scene)}`, { cache: "no-store" });
    if (!response.ok) {
      this.setStatus((await response.json().catch(() => ({}))).error ?? `scene: ${response.status} ${response.statusText}`);
      return;
    }
    const scene = parseScene(await response.arrayBuffer());
    this.scene = scene;
    this.clip = { frames: entry.frames, width: entry.width, height: entry.height, radius: entry.radius,
      focal: entry.focal, focals: entry.focals };
    this.renderer?.setScene(scene);
    this.frameOverview();
    this.setStatus("");
  }

  // the "load scene" action: the scene of this node's depth and frames, from a camera node that ran on them
  // earlier (the server remembers it by the nodes upstream), without queueing
  async loadSceneFromServer() {
    try {
      const { output } = await app.graphToPrompt();
      const body = JSON.stringify({ node: executionId(this.node), prompt: output });
      const response = await api.fetchApi(SCENE_ROUTE, { method: "POST", headers: { "Content-Type": "application/json" }, body });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) { this.setStatus(answer.error ?? `scene: ${response.status} ${response.statusText}`); return; }
      await this.loadScene(answer);
      if (this.isPathNode) { this.request.signature = null; this.requestPath(); } else this.draw();
    } catch (e) { this.setStatus(`scene: ${e.message}`); }
  }

  frameOverview() { // orbit around the middle of the scene (the far wall left out)
    const p = this.scene.positions, { rows, cols } = this.scene;
    const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    for (let r = 1; r < rows - 1; r++) for (let c = 1; c < cols - 1; c++) {
      const i = (r * cols + c) * 3;
      for (let k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], p[i + k]); hi[k] = Math.max(hi[k], p[i + k]); }
    }
    if (!Number.isFinite(lo[0])) return;
    lo[2] = Math.min(lo[2], 0); // keep the source camera in the picture
    this.view.pivot = scale(add(lo, hi), 0.5);
    this.view.distance = 0.95 * Math.hypot(...sub(hi, lo));
  }

  setPath(json) {
    this.path = parsePath(json);
    const n = this.path.cameras.length;
    this.slider.max = String(n - 1);
    this.frame = Math.min(this.frame, n - 1);
    this.slider.value = String(this.frame);
    this.fractions = [];
    this.draw();
    this.scheduleVisibility();
  }

  requestPath() {
    if (!this.isPathNode || !this.clip) return;
    const inputs = this.widgetValues();
    this.request.signature = JSON.stringify(inputs);
    if (this.request.inFlight) { this.request.again = true; return; }
    this.request.inFlight = true;
    const sequence = ++this.request.sequence;
    const body = JSON.stringify({ node: this.node.comfyClass, clip: this.clip, inputs });
    api.fetchApi(PATH_ROUTE, { method: "POST", headers: { "Content-Type": "application/json" }, body })
      .then(async (response) => {
        const answer = await response.json();
        if (sequence !== this.request.sequence) return;
        if (response.ok) { this.setStatus(""); this.setPath(answer); } else this.setStatus(answer.error ?? response.statusText);
      })
      .catch((e) => this.setStatus(`path: ${e.message}`))
      .finally(() => {
        this.request.inFlight = false;
        if (this.request.again) { this.request.again = false; this.requestPath(); }
      });
  }

  // widgets changed by any means (typing, arrows, a loaded workflow, a script): compare with what was sent
  poll() {
    if (!this.isPathNode || !this.clip || this.request.inFlight) return;
    if (JSON.stringify(this.widgetValues()) !== this.request.signature) this.requestPath();
  }

  setFrame(frame) {
    this.frame = frame;
    this.slider.value = String(frame);
    this.draw();
  }

  // ----- visibility strip, a few frames per task so the page stays responsive
  scheduleVisibility() {
    const token = (this.visibilityToken = {});
    const path = this.path, scene = this.scene;
    if (!path || !scene || !this.renderer) return;
    const width = VISIBILITY_WIDTH, height = Math.max(1, Math.round(VISIBILITY_WIDTH * path.height / path.width));
    const clips = path.cameras.map((c) => this.newViewClip(c));
    const fractions = [];
    const step = () => {
      if (token !== this.visibilityToken) return;
      fractions.push(...this.renderer.visibleFractions(clips.slice(fractions.length, fractions.length + 8), width, height));
      if (fractions.length >= 1) fractions[0] = 1; // frame 0 is the source frame itself (full mask)
      this.fractions = fractions;
      this.drawStrip();
      this.updateLabel();
      if (fractions.length < clips.length) setTimeout(step, 0);
      else this.visibilityDone = path;
    };
    this.visibilityDone = null;
    setTimeout(step, 0);
  }

  newViewClip(camera) {
    const p = this.path;
    const flip = fromRows([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
    return multiply(flip, multiply(publishedProjection(p.width, p.height, camera.focal), camera.extrinsics));
  }

  // ----- overview camera
  overviewCamera(width, height) {
    const v = this.view;
    const yaw = v.yaw * Math.PI / 180, pitch = v.pitch * Math.PI / 180;
    const offset = [Math.sin(yaw) * Math.cos(pitch), -Math.sin(pitch), -Math.cos(yaw) * Math.cos(pitch)];
    const distance = v.distance ?? 4;
    const eye = add(v.pivot, scale(offset, distance));
    const up = [0, -1, 0]; // world y points down
    const fov = 45 * Math.PI / 180;
    const clip = multiply(perspective(fov, width / height, distance * 0.01, distance * 100), lookAt(eye, v.pivot, up));
    const forward = normalize(sub(v.pivot, eye));
    const right = normalize(cross(forward, up));
    return { clip, eye, forward, right, up: cross(right, forward), fov, aspect: width / height };
  }

  toScreen(camera, point) { // world -> CSS pixels in the canvas
    const c = transform(camera.clip, point);
    if (c[3] <= 0) return null;
    return [(c[0] / c[3] + 1) / 2 * this.canvas.clientWidth, (1 - c[1] / c[3]) / 2 * this.canvas.clientHeight];
  }

  ray(camera, x, y) { // CSS pixel -> world ray from the overview eye
    const nx = x / this.canvas.clientWidth * 2 - 1, ny = 1 - y / this.canvas.clientHeight * 2;
    const t = Math.tan(camera.fov / 2);
    return normalize(add(camera.forward, add(scale(camera.right, nx * t * camera.aspect), scale(camera.up, ny * t))));
  }

  // ----- handles: each key's eye and the target (Keyframes); the first and last eye and the target (Orbit, Dolly)
  handles() {
    if (!this.editable || !this.path) return [];
    if (this.node.comfyClass !== KEYFRAMES_NODE) {
      const cameras = this.path.cameras;
      return [{ kind: "start", index: 0, at: cameras[0].eye }, { kind: "end", index: cameras.length - 1,
        at: cameras[cameras.length - 1].eye }, { kind: "target", index: -1, at: [0, 0, this.radius()] }];
    }
    const keys = this.keyframes();
    const n = this.path.cameras.length, r = this.radius();
    const out = keys.map((k, i) => ({ kind: "eye", index: i,
      at: this.path.cameras[Math.min(n - 1, Math.max(0, Math.round(Number(k.frame) || 0)))].eye }));
    const target = keys.find((k) => Array.isArray(k.target))?.target ?? [0, 0, r];
    out.push({ kind: "target", index: -1, at: target.map(Number) });
    return out;
  }

  screenHandles() {
    const camera = this.overviewCamera(this.canvas.clientWidth || 1, this.canvas.clientHeight || 1);
    const box = this.canvas.getBoundingClientRect();
    return this.handles().map((h) => {
      const s = this.toScreen(camera, h.at);
      const inside = s && s[0] >= 0 && s[1] >= 0 && s[0] <= box.width && s[1] <= box.height;
      return inside && { kind: h.kind, index: h.index, x: box.left + s[0], y: box.top + s[1] };
    }).filter(Boolean);
  }

  setWidget(name, value, digits) { // clamped to the widget's range, as the host's number widget would
    const widget = this.widget(name);
    if (!widget || !Number.isFinite(value)) return;
    const o = widget.options ?? {};
    const v = Math.min(o.max ?? Infinity, Math.max(o.min ?? -Infinity, value));
    widget.value = Number(v.toFixed(digits));
    widget.callback?.(widget.value);
  }

  // where a dragged handle goes: on the orbit sphere (Orbit's eyes), on the view axis (Dolly's eyes and any
  // target), else in the plane through the handle facing the overview camera
  dragPoint(drag, dir) {
    const c = drag.camera, kind = drag.handle.kind, cls = this.node.comfyClass;
    if (cls !== KEYFRAMES_NODE && (kind === "target" || cls === DOLLY_NODE)) { // nearest point of the z axis
      const w0 = c.eye, b = dir[2], d = dot(dir, w0), e = w0[2];
      const denom = 1 - b * b;
      if (denom < 1e-9) return null;
      return [0, 0, (e - b * d) / denom];
    }
    if (cls === ORBIT_NODE) { // the ray's hit on the sphere of the eye's distance, the one nearer the handle
      const target = [0, 0, this.radius()];
      const radius = Math.hypot(...sub(drag.handle.at, target));
      const m = sub(c.eye, target), b = dot(m, dir), q = dot(m, m) - radius * radius, disc = b * b - q;
      if (disc >= 0) {
        const hits = [-b - Math.sqrt(disc), -b + Math.sqrt(disc)].filter((t) => t > 0).map((t) => add(c.eye, scale(dir, t)));
        if (hits.length) {
          const last = drag.last ?? drag.handle.at;
          return hits.reduce((a, h) => (Math.hypot(...sub(h, last)) < Math.hypot(...sub(a, last)) ? h : a));
        }
      }
    }
    const denom = dot(dir, c.forward);
    if (Math.abs(denom) < 1e-6) return null;
    return add(c.eye, scale(dir, dot(sub(drag.start, c.eye), c.forward) / denom));
  }

  moveHandle(handle, point) {
    const cls = this.node.comfyClass;
    if (cls !== KEYFRAMES_NODE) { // rewrite the node's own widgets
      const r = this.radius();
      if (handle.kind === "target") this.setWidget("radius", Math.max(0.01, point[2]), 4);
      else if (cls === DOLLY_NODE) this.setWidget(handle.kind, point[2] / r, 3);
      else {
        const angles = yawPitch(sub(point, [0, 0, r]), this.widget(`yaw_${handle.kind}`)?.value);
        if (!angles) return;
        this.setWidget(`yaw_${handle.kind}`, angles.yaw, 2);
        this.setWidget(`pitch_${handle.kind}`, angles.pitch, 2);
      }
      this.node.setDirtyCanvas?.(true, true);
      this.requestPath();
      return;
    }
    const keys = this.keyframes();
    const round = (v, d) => Number(v.toFixed(d));
    if (handle.kind === "target") {
      for (const k of keys) k.target = point.map((v) => round(v, 4));
    } else {
      const key = keys[handle.index];
      if (!key) return;
      if (Array.isArray(key.eye)) key.eye = point.map((v) => round(v, 4));
      else { // keep the key in the form it was written: yaw / pitch / distance around its target
        const target = Array.isArray(key.target) ? key.target.map(Number) : [0, 0, this.radius()];
        const angles = yawPitch(sub(point, target), key.yaw);
        if (!angles) return;
        key.yaw = round(angles.yaw, 2);
        key.pitch = round(angles.pitch, 2);
        key.distance = round(angles.distance, 4);
      }
    }
    const widget = this.widget("keyframes");
    widget.value = JSON.stringify(keys);
    widget.callback?.(widget.value);
    this.node.setDirtyCanvas?.(true, true);
    this.requestPath();
  }

  bindMouse() {
    const canvas = this.canvas;
    let drag = null;
    canvas.addEventListener("pointerdown", (e) => {
      if (!this.path && !this.scene) return;
      const box = canvas.getBoundingClientRect();
      const near = this.screenHandles().find((h) => Math.hypot(h.x - e.clientX, h.y - e.clientY) <= HANDLE_RADIUS_PX);
      canvas.setPointerCapture(e.pointerId);
      if (near) {
        const handle = this.handles().find((h) => h.kind === near.kind && h.index === near.index);
        const camera = this.overviewCamera(canvas.clientWidth, canvas.clientHeight);
        drag = { mode: "handle", handle, start: handle.at, camera, box };
      } else {
        drag = { mode: e.button === 2 || e.shiftKey ? "pan" : "orbit", x: e.clientX, y: e.clientY };
      }
      canvas.style.cursor = "grabbing";
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      if (drag.mode === "handle") {
        const point = this.dragPoint(drag, this.ray(drag.camera, e.clientX - drag.box.left, e.clientY - drag.box.top));
        if (point) { drag.last = point; this.moveHandle(drag.handle, point); }
        return;
      }
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      if (drag.mode === "orbit") {
        this.view.yaw -= dx * 0.4;
        this.view.pitch = Math.max(-89, Math.min(89, this.view.pitch + dy * 0.4));
      } else {
        const c = this.overviewCamera(canvas.clientWidth, canvas.clientHeight);
        const k = (this.view.distance ?? 4) * 2 * Math.tan(c.fov / 2) / canvas.clientHeight;
        this.view.pivot = add(this.view.pivot, add(scale(c.right, -dx * k), scale(c.up, dy * k)));
      }
      this.draw();
    });
    const end = () => { drag = null; canvas.style.cursor = "grab"; };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("wheel", (e) => {
      this.view.distance = (this.view.distance ?? 4) * Math.exp(e.deltaY * 0.001);
      e.preventDefault();
      this.draw();
    }, { passive: false });
  }

  // ----- drawing
  overlay() {
    const lines = [], points = [];
    const path = this.path;
    if (!path) return { lines, points };
    const n = path.cameras.length;
    const size = 0.2 * this.radius();
    const frustum = (camera, colour) => {
      const hw = path.width / 2 / camera.focal * size, hh = path.height / 2 / camera.focal * size;
      const centre = add(camera.eye, scale(camera.forward, size));
      const corners = [[-1, -1], [1, -1], [1, 1], [-1, 1]].map(([a, b]) =>
        add(centre, add(scale(camera.right, a * hw), scale(camera.down, b * hh))));
      for (let i = 0; i < 4; i++) {
        lines.push({ from: camera.eye, to: corners[i], color: colour });
        lines.push({ from: corners[i], to: corners[(i + 1) % 4], color: colour });
      }
      lines.push({ from: add(corners[0], corners[1]).map((v) => v / 2), // a tick on the image's top edge
        to: add(scale(add(corners[0], corners[1]), 0.5), scale(camera.down, -0.4 * hh)), color: colour });
    };
    for (let i = 1; i < n; i++) {
      lines.push({ from: path.cameras[i - 1].eye, to: path.cameras[i].eye, color: frameColour(i / Math.max(1, n - 1)) });
    }
    const every = Math.max(1, Math.round(n / 8));
    for (let i = 0; i < n; i += every) frustum(path.cameras[i], frameColour(i / Math.max(1, n - 1)).map((v) => v * 0.8));
    frustum(path.cameras[n - 1], frameColour(1));
    frustum(path.cameras[this.frame], [1, 1, 1]);
    const target = this.handles().find((h) => h.kind === "target")?.at ?? [0, 0, this.radius()];
    const arm = 0.05 * this.radius();
    for (let k = 0; k < 3; k++) {
      const d = [0, 0, 0]; d[k] = arm;
      lines.push({ from: sub(target, d), to: add(target, d), color: [1, 0.9, 0.2] });
    }
    for (const h of this.handles()) points.push({ at: h.at, color: h.kind === "target" ? [1, 0.9, 0.2] : [1, 1, 1] });
    return { lines, points };
  }

  draw() {
    const r = this.renderer;
    if (!r) return;
    const t0 = performance.now();
    const gl = r.gl, canvas = this.canvas;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr)), h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.viewport(0, 0, w, h);
    gl.disable(gl.SCISSOR_TEST);
    gl.clearColor(0.08, 0.08, 0.11, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.DEPTH_TEST);
    const camera = this.overviewCamera(canvas.clientWidth || 1, canvas.clientHeight || 1);
    r.drawScene(camera.clip, 0, true);
    const { lines, points } = this.overlay();
    r.setOverlay(lines, points);
    gl.disable(gl.DEPTH_TEST); // the path and handles stay visible through the scene
    r.drawOverlay(camera.clip);
    if (this.path) { // the new view at this frame, as Render Views renders it, in the lower right corner
      const inset = this.insetRect(w, h);
      gl.enable(gl.SCISSOR_TEST);
      gl.scissor(inset.x - 1, inset.y - 1, inset.w + 2, inset.h + 2);
      gl.clearColor(0.9, 0.9, 0.9, 1);
      gl.clear(gl.COLOR_BUFFER_BIT);
      gl.scissor(inset.x, inset.y, inset.w, inset.h);
      gl.viewport(inset.x, inset.y, inset.w, inset.h);
      gl.clearColor(0, 0, 0, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      r.drawScene(this.newViewClip(this.path.cameras[this.frame]), 1, false);
      gl.disable(gl.SCISSOR_TEST);
    }
    this.lastDrawMs = performance.now() - t0;
    this.updateLabel();
    this.drawStrip();
  }

  insetRect(w, h) { // in drawing-buffer pixels, origin bottom left (WebGL's)
    const p = this.path;
    const iw = Math.round(Math.min(w * 0.38, h * 0.45 * p.width / p.height));
    const ih = Math.max(1, Math.round(iw * p.height / p.width));
    return { x: w - iw - 6, y: h - ih - 6, w: iw, h: ih }; // top right: the path runs along the bottom
  }

  updateLabel() {
    const n = this.path?.cameras.length ?? 0;
    const f = this.fractions[this.frame];
    this.label.textContent = n ? `frame ${this.frame} / ${n - 1}` + (f === undefined ? "" : ` · visible ${(100 * f).toFixed(0)}%`) : "";
  }

  drawStrip() {
    const strip = this.strip;
    const w = Math.max(1, strip.clientWidth), h = Math.max(1, strip.clientHeight);
    if (strip.width !== w || strip.height !== h) { strip.width = w; strip.height = h; }
    const ctx = strip.getContext("2d");
    ctx.fillStyle = "#15151c";
    ctx.fillRect(0, 0, w, h);
    const n = this.path?.cameras.length ?? 0;
    if (!n) return;
    for (let i = 0; i < this.fractions.length; i++) {
      const f = this.fractions[i];
      const x0 = Math.floor(i * w / n), x1 = Math.floor((i + 1) * w / n);
      ctx.fillStyle = `rgb(${Math.round(230 * (1 - f) + 40)}, ${Math.round(200 * f + 30)}, 60)`;
      ctx.fillRect(x0, h - f * h, Math.max(1, x1 - x0 - 1), f * h);
    }
    ctx.fillStyle = "#fff";
    ctx.fillRect(Math.floor((this.frame + 0.5) * w / n) - 1, 0, 2, h);
  }

  // ----- for tests and the measurement of the redraw time
  inspect() {
    const r = this.renderer, gl = r?.gl;
    const stats = (x, y, w, h) => { // mean colour, pixels unlike the background, black pixels
      const px = new Uint8Array(w * h * 4);
      gl.readPixels(x, y, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
      let lit = 0, black = 0, sum = [0, 0, 0], hash = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (Math.abs(px[i] - 20) + Math.abs(px[i + 1] - 20) + Math.abs(px[i + 2] - 28) > 24) lit++;
        if (px[i] + px[i + 1] + px[i + 2] < 6) black++;
        sum[0] += px[i]; sum[1] += px[i + 1]; sum[2] += px[i + 2];
        hash = (hash * 31 + px[i] + 7 * px[i + 1] + 13 * px[i + 2]) >>> 0;
      }
      const count = px.length / 4;
      return { lit: lit / count, black: black / count, mean: sum.map((v) => v / count), hash };
    };
    const w = this.canvas.width, h = this.canvas.height;
    const inset = this.path ? this.insetRect(w, h) : null;
    return {
      hasScene: !!this.scene, frames: this.path?.cameras.length ?? 0, frame: this.frame, status: this.status,
      // the path shown is the one of the widgets' current values (no request pending or due)
      settled: !this.isPathNode || (!this.request.inFlight && JSON.stringify(this.widgetValues()) === this.request.signature),
      visibilityDone: !!this.path && this.visibilityDone === this.path, fractions: this.fractions,
      extrinsics: this.path?.json.extrinsics ?? null, handles: this.screenHandles(),
      focals: this.path?.cameras.map((c) => c.focal) ?? null,
      canvas: r ? stats(0, 0, w, h) : null,
      inset: r && inset ? stats(inset.x + 2, inset.y + 2, inset.w - 4, inset.h - 4) : null,
      overview: r ? stats(0, Math.round(h * 0.5), Math.round(w * 0.5), Math.round(h * 0.5) - 1) : null,
    };
  }

  timeRedraw(count = 20) { // ms per full redraw, the GPU's work included (readPixels waits for it)
    const gl = this.renderer.gl, px = new Uint8Array(4);
    this.draw();
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
    const times = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      this.view.yaw += 1;
      this.frame = (this.frame + 1) % (this.path?.cameras.length ?? 1);
      this.draw();
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { median: times[Math.floor(count / 2)], max: times[count - 1], width: this.canvas.width, height: this.canvas.height,
      faces: (this.renderer.counts?.all ?? 0) / 3 };
  }
}

// Nodes 2.0 forwards the wheel to the graph (in the capture phase, before the editor sees it) unless the
// wheel is over an element marked data-capture-wheel that holds the focused element. The editor takes the
// focus while the pointer is over it, unless the user is typing somewhere, and gives it back on leaving.
function captureWheel(root) {
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

// ------------------------------------------------------------------ registration

function attachEditor(node) {
  const editor = new CameraEditor(node);
  const widget = node.addDOMWidget(WIDGET_NAME, "ex4d_camera_editor", editor.root, {
    serialize: false, hideOnZoom: false,
    getValue: () => undefined, setValue: () => {},
    getMinHeight: () => EDITOR_HEIGHT, getHeight: () => EDITOR_HEIGHT,
  });
  widget.serialize = false; // not in widgets_values, not in the queued prompt
  node.ex4dEditor = editor;
  const [width, height] = node.computeSize();
  node.setSize([Math.max(width, 520), Math.max(height, node.size?.[1] ?? 0)]);
  for (const w of node.widgets ?? []) {
    if (w === widget) continue;
    const callback = w.callback;
    w.callback = function (...args) {
      const result = callback?.apply(this, args);
      editor.requestPath();
      return result;
    };
  }
  const timer = setInterval(() => {
    if (!node.graph) { clearInterval(timer); return; }
    editor.poll();
  }, 150);
  const onExecuted = node.onExecuted;
  node.onExecuted = function (output) {
    onExecuted?.apply(this, arguments);
    const scene = output?.ex4d_scene?.[0], path = output?.ex4d_path?.[0];
    (scene ? editor.loadScene(scene) : Promise.resolve()).then(() => {
      if (path) {
        editor.setPath(path);
        editor.request.signature = JSON.stringify(editor.widgetValues());
      }
    }).catch((e) => editor.setStatus(`scene: ${e.message}`));
  };
}

app.registerExtension({
  name: "EX-4D.cameraEditor",
  nodeCreated(node) {
    if (PATH_NODES.has(node.comfyClass) || node.comfyClass === PREVIEW_NODE) attachEditor(node);
  },
});

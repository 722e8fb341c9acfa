// The camera editor on one node: the clip's frame-0 DW-mesh, the camera path as frusta, the new view at a
// frame, and how much of each frame the renderer can see.
//
// The path is never computed here: the pack's route evaluates the node's widgets with the function the node
// runs, so the path shown is the path that runs. The scene (a downsampled DW-mesh of frame 0) is made when the
// node runs: its UI output names it, the pack's route serves it.
//
// Scripts reach a node's editor as `node.ex4dEditor`: `scene`, `path` (its `cameras` and the route's `json`),
// `frame`, `fractions` (each frame's visible fraction, once `visibilityDone === path`), `status`, `view`
// (the overview: yaw, pitch, distance, pivot), `pathPending()`, `handles()` / `screenHandles()`, `setFrame(i)`,
// `draw()`, `newViewClip(camera)`, `loadSceneFromServer()`, and its elements (`canvas`, `slider`, `loadButton`).
import { FLIP_Y, multiply, publishedProjection } from "./maths.js";
import { parsePath } from "./data.js";
import { Renderer } from "./renderer.js";
import { drawStrip, pathOverlay } from "./overlay.js";
import { HANDLE_RADIUS_PX, handleWrites, placeHandles } from "./handles.js";
import { bindMouse, framingView, overviewCamera, toScreen } from "./controls.js";
import { buildPanel } from "./panel.js";
import { fetchPath, fetchScene, findScene } from "./server.js";

const VISIBILITY_WIDTH = 96; // pixels across of the per-frame visibility renders
const VISIBILITY_BATCH = 8; // frames per task, so that the page stays responsive

export class CameraEditor {
  // config: the server's editor description (GET /ex4d/camera/editor); the node's entry is config.nodes[class]
  constructor(node, config, ownWidget) {
    this.node = node;
    this.config = config;
    this.spec = config.nodes[node.comfyClass];
    this.ownWidget = ownWidget; // the editor's own widget name, not one of the node's inputs
    this.scene = null;
    this.clip = null; // {frames, width, height, radius, focal, focals} the node reported (the depth's lens)
    this.path = null;
    this.frame = 0;
    this.fractions = [];
    this.view = { yaw: 35, pitch: 25, distance: null, pivot: [0, 0, 1] };
    this.request = { sequence: 0, inFlight: false, again: false, signature: null };
    this.status = "";
    Object.assign(this, buildPanel());
    try {
      this.renderer = new Renderer(this.canvas, config.mask.alpha_threshold);
    } catch (e) {
      this.renderer = null;
      this.setStatus(`camera editor unavailable: ${e.message}`);
    }
    this.bindPanel();
    if (this.renderer) this.setStatus("Queue the graph once: the clip's scene and path appear here.");
  }

  bindPanel() {
    this.slider.addEventListener("input", () => this.setFrame(Number(this.slider.value)));
    this.strip.addEventListener("pointerdown", (e) => {
      const n = this.path?.cameras.length ?? 0;
      if (!n) return;
      const r = this.strip.getBoundingClientRect();
      this.setFrame(Math.min(n - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * n))));
    });
    this.loadButton.addEventListener("click", () => this.loadSceneFromServer());
    bindMouse(this);
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  setStatus(text) { this.status = text; this.statusLine.textContent = text; }

  // ----- the node's widgets
  widgetValues() {
    const values = {};
    for (const w of this.node.widgets ?? []) if (w.name && w.name !== this.ownWidget) values[w.name] = w.value;
    return values;
  }

  widget(name) { return this.node.widgets?.find((w) => w.name === name); }

  radius() { // the subject's depth: the radius widget's, or the clip's where it is 0
    const r = Number(this.spec.radius ? this.widget(this.spec.radius)?.value ?? 0 : 0);
    return r > 0 ? r : this.clip?.radius ?? 1;
  }

  keyframes() {
    const name = this.spec.handles.find((h) => h.widgets.keyframes)?.widgets.keyframes;
    try {
      const keys = JSON.parse((name && this.widget(name)?.value) ?? "[]");
      return Array.isArray(keys) ? keys : [];
    } catch { return []; }
  }

  setWidget(name, value, digits) { // numbers clamped to the widget's range, as the host's number widget would
    const widget = this.widget(name);
    if (!widget) return;
    if (digits !== null) {
      if (!Number.isFinite(value)) return;
      const o = widget.options ?? {};
      value = Number(Math.min(o.max ?? Infinity, Math.max(o.min ?? -Infinity, value)).toFixed(digits));
    }
    widget.value = value;
    widget.callback?.(widget.value);
  }

  // ----- scene and path
  async loadScene(entry) {
    const { ok, scene, answer } = await fetchScene(entry.scene);
    if (!ok) { this.setStatus(answer.error); return; }
    this.scene = scene;
    this.clip = { frames: entry.frames, width: entry.width, height: entry.height, radius: entry.radius,
      focal: entry.focal, focals: entry.focals };
    this.renderer?.setScene(scene);
    Object.assign(this.view, framingView(scene) ?? {});
    this.setStatus("");
  }

  // the "load scene" action: the scene of this node's depth and frames, from a camera node that ran on them earlier
  async loadSceneFromServer() {
    try {
      const { ok, answer } = await findScene(this.node);
      if (!ok) { this.setStatus(answer.error); return; }
      await this.loadScene(answer);
      if (this.spec.path) { this.request.signature = null; this.requestPath(); } else this.draw();
    } catch (e) { this.setStatus(`scene: ${e.message}`); }
  }

  // what the node's last run reported: its scene and the path it ran
  async showRun(scene, path) {
    if (scene) await this.loadScene(scene);
    if (path) {
      this.setPath(path);
      this.request.signature = JSON.stringify(this.widgetValues());
    }
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

  // ask the route for the path of the widgets' current values (once per change; the latest answer wins)
  requestPath() {
    if (!this.spec.path || !this.clip) return;
    const inputs = this.widgetValues(), signature = JSON.stringify(inputs);
    if (this.request.inFlight) { this.request.again = signature !== this.request.signature; return; }
    if (signature === this.request.signature) return;
    this.request.signature = signature;
    this.request.inFlight = true;
    const sequence = ++this.request.sequence;
    fetchPath(this.node.comfyClass, this.clip, inputs)
      .then(({ ok, answer }) => {
        if (sequence !== this.request.sequence) return;
        if (ok) { this.setStatus(""); this.setPath(answer); } else this.setStatus(answer.error);
      })
      .catch((e) => this.setStatus(`path: ${e.message}`))
      .finally(() => {
        this.request.inFlight = false;
        if (this.request.again) { this.request.again = false; this.requestPath(); }
      });
  }

  // true while the path shown is not yet the one of the widgets' current values
  pathPending() {
    return this.spec.path && (this.request.inFlight || JSON.stringify(this.widgetValues()) !== this.request.signature);
  }

  setFrame(frame) {
    this.frame = frame;
    this.slider.value = String(frame);
    this.draw();
  }

  // ----- visibility strip
  scheduleVisibility() {
    const token = (this.visibilityToken = {});
    const path = this.path, scene = this.scene;
    if (!path || !scene || !this.renderer) return;
    const width = VISIBILITY_WIDTH, height = Math.max(1, Math.round(VISIBILITY_WIDTH * path.height / path.width));
    const clips = path.cameras.map((c) => this.newViewClip(c));
    const fractions = [];
    const step = () => {
      if (token !== this.visibilityToken) return;
      const batch = clips.slice(fractions.length, fractions.length + VISIBILITY_BATCH);
      fractions.push(...this.renderer.visibleFractions(batch, width, height));
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

  newViewClip(camera) { // world -> clip of a frame's camera as Render Views projects it, shown upright
    const p = this.path;
    return multiply(FLIP_Y, multiply(publishedProjection(p.width, p.height, camera.focal, this.config.projection),
      camera.extrinsics));
  }

  // ----- handles
  handles() {
    return placeHandles(this.spec.handles, this.path, this.radius(), this.keyframes());
  }

  screenHandles() { // in client pixels, those inside the canvas
    const camera = overviewCamera(this.view, this.canvas.clientWidth || 1, this.canvas.clientHeight || 1);
    const box = this.canvas.getBoundingClientRect();
    return this.handles().map((h) => {
      const s = toScreen(camera, h.at, this.canvas);
      const inside = s && s[0] >= 0 && s[1] >= 0 && s[0] <= box.width && s[1] <= box.height;
      return inside && { kind: h.kind, index: h.index, x: box.left + s[0], y: box.top + s[1] };
    }).filter(Boolean);
  }

  moveHandle(handle, point) {
    for (const [name, value, digits] of handleWrites(handle, point, this)) this.setWidget(name, value, digits);
    this.node.setDirtyCanvas?.(true, true);
    this.requestPath();
  }

  // ----- drawing
  draw() {
    const r = this.renderer;
    if (!r) return;
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
    const camera = overviewCamera(this.view, canvas.clientWidth || 1, canvas.clientHeight || 1);
    r.drawScene(camera.clip, 0, true);
    const { lines, points } = pathOverlay(this.path, this.frame, this.handles(), this.radius());
    r.setOverlay(lines, points);
    gl.disable(gl.DEPTH_TEST); // the path and handles stay visible through the scene
    r.drawOverlay(camera.clip, 2 * HANDLE_RADIUS_PX - 4);
    if (this.path) this.drawNewView(w, h);
    this.updateLabel();
    this.drawStrip();
  }

  drawNewView(w, h) { // the new view at this frame, as Render Views renders it, framed in a corner
    const gl = this.renderer.gl, inset = this.insetRect(w, h);
    gl.enable(gl.SCISSOR_TEST);
    gl.scissor(inset.x - 1, inset.y - 1, inset.w + 2, inset.h + 2);
    gl.clearColor(0.9, 0.9, 0.9, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.scissor(inset.x, inset.y, inset.w, inset.h);
    gl.viewport(inset.x, inset.y, inset.w, inset.h);
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.DEPTH_TEST);
    this.renderer.drawScene(this.newViewClip(this.path.cameras[this.frame]), 1, false);
    gl.disable(gl.SCISSOR_TEST);
  }

  insetRect(w, h) { // in drawing-buffer pixels, origin bottom left (WebGL's); top right: the path runs along the bottom
    const p = this.path;
    const iw = Math.round(Math.min(w * 0.38, h * 0.45 * p.width / p.height));
    const ih = Math.max(1, Math.round(iw * p.height / p.width));
    return { x: w - iw - 6, y: h - ih - 6, w: iw, h: ih };
  }

  updateLabel() {
    const n = this.path?.cameras.length ?? 0;
    const f = this.fractions[this.frame];
    this.label.textContent = n ? `frame ${this.frame} / ${n - 1}` + (f === undefined ? "" : ` · visible ${(100 * f).toFixed(0)}%`) : "";
  }

  drawStrip() { drawStrip(this.strip, this.fractions, this.frame, this.path?.cameras.length ?? 0); }
}

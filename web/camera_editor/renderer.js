// WebGL2 drawing of the camera editor: the scene mesh (coloured, hidden faces black, or the renderer's mask), the
// path's lines and handle points, and the fraction of each new view the renderer will see. Our own code.

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

export class Renderer {
  // alphaThreshold: a face is visible (in the renderer's mask) where its alpha is above this, in [0, 1]
  constructor(canvas, alphaThreshold) {
    const gl = canvas.getContext("webgl2", { antialias: false, preserveDrawingBuffer: true });
    if (!gl) throw new Error("WebGL2 is not available in this browser");
    this.gl = gl;
    this.alphaThreshold = alphaThreshold;
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
    gl.uniform1f(this.mesh.uniforms.threshold, this.alphaThreshold);
    gl.bindVertexArray(this.sceneVao);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, inner ? this.innerFaces : this.allFaces);
    gl.drawElements(gl.TRIANGLES, inner ? this.counts.inner : this.counts.all, gl.UNSIGNED_INT, 0);
    gl.bindVertexArray(null);
  }

  drawOverlay(clip, pointSize) {
    const gl = this.gl;
    gl.useProgram(this.lines.program);
    gl.uniformMatrix4fv(this.lines.uniforms.clip, false, clip);
    gl.uniform1f(this.lines.uniforms.pointSize, pointSize);
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
      gl.renderbufferStorage(gl.RENDERBUFFER, gl.DEPTH_COMPONENT32F, width, height);
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

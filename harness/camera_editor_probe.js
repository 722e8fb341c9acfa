// What the browser tests read from a node's camera editor (web/camera_editor/editor.js names what scripts may
// reach): evaluated in the page by harness/frontend.py, never shipped with the pack.
({
  pixelStats(gl, x, y, w, h) { // mean colour, pixels unlike the background, black pixels, a hash
    const px = new Uint8Array(w * h * 4);
    gl.readPixels(x, y, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    let lit = 0, black = 0, hash = 0;
    const sum = [0, 0, 0];
    for (let i = 0; i < px.length; i += 4) {
      if (Math.abs(px[i] - 20) + Math.abs(px[i + 1] - 20) + Math.abs(px[i + 2] - 28) > 24) lit++;
      if (px[i] + px[i + 1] + px[i + 2] < 6) black++;
      sum[0] += px[i]; sum[1] += px[i + 1]; sum[2] += px[i + 2];
      hash = (hash * 31 + px[i] + 7 * px[i + 1] + 13 * px[i + 2]) >>> 0;
    }
    const count = px.length / 4;
    return { lit: lit / count, black: black / count, mean: sum.map((v) => v / count), hash };
  },

  inspect(editor) {
    const gl = editor.renderer?.gl, w = editor.canvas.width, h = editor.canvas.height;
    const inset = editor.path ? editor.insetRect(w, h) : null;
    return {
      hasScene: !!editor.scene, frames: editor.path?.cameras.length ?? 0, frame: editor.frame, status: editor.status,
      settled: !editor.pathPending(), // the path shown is the one of the widgets' current values
      visibilityDone: !!editor.path && editor.visibilityDone === editor.path, fractions: editor.fractions,
      extrinsics: editor.path?.json.extrinsics ?? null, handles: editor.screenHandles(),
      focals: editor.path?.cameras.map((c) => c.focal) ?? null,
      canvas: gl ? this.pixelStats(gl, 0, 0, w, h) : null,
      inset: gl && inset ? this.pixelStats(gl, inset.x + 2, inset.y + 2, inset.w - 4, inset.h - 4) : null,
      overview: gl ? this.pixelStats(gl, 0, Math.round(h * 0.5), Math.round(w * 0.5), Math.round(h * 0.5) - 1) : null,
    };
  },

  timeRedraw(editor, count) { // ms per full redraw, the GPU's work included (readPixels waits for it)
    const gl = editor.renderer.gl, px = new Uint8Array(4);
    editor.draw();
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
    const times = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      editor.view.yaw += 1;
      editor.setFrame((editor.frame + 1) % (editor.path?.cameras.length ?? 1));
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { median: times[Math.floor(count / 2)], max: times[count - 1], width: editor.canvas.width,
      height: editor.canvas.height, faces: (editor.renderer.counts?.all ?? 0) / 3 };
  },
})

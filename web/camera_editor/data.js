// The server's answers as the editor draws them: the scene file and a camera path.
import { fromRows } from "./maths.js";

// The compact scene file the pack's route serves: "EX4DSCN1", a JSON header, then positions, colours, faces.
export function parseScene(buffer) {
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

// Per-frame cameras from the route's (or the node's) path: extrinsics E (world -> OpenGL-style camera) and the
// frame's focal length ("focals" when the path zooms, e.g. a dolly-zoom; else the one of "intrinsics").
export function parsePath(json) {
  const k = json.intrinsics;
  const cameras = json.extrinsics.map((rows, i) => {
    const r = (i, j) => rows[i][j];
    const t = [rows[0][3], rows[1][3], rows[2][3]];
    const eye = [0, 1, 2].map((j) => -(r(0, j) * t[0] + r(1, j) * t[1] + r(2, j) * t[2]));
    return {
      extrinsics: fromRows(rows), eye, focal: json.focals?.[i] ?? k[0][0],
      right: [r(0, 0), r(0, 1), r(0, 2)], // image x in world
      down: [-r(1, 0), -r(1, 1), -r(1, 2)], // image y (rows) in world
      forward: [-r(2, 0), -r(2, 1), -r(2, 2)],
    };
  });
  return { width: json.width, height: json.height, cameras, json };
}

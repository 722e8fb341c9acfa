// The pack's camera routes (nodes/_routes.py), as the editor calls them. Each answers {ok, answer} or throws
// on a network failure; a refused request's answer holds the server's message as `error`.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { parseScene } from "./data.js";

const EDITOR_ROUTE = "/ex4d/camera/editor";
const PATH_ROUTE = "/ex4d/camera/path";
const SCENE_ROUTE = "/ex4d/camera/scene"; // GET <key>: a scene; POST {node, prompt}: the scene of that depth

async function answered(response) {
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) answer.error ??= `${response.status} ${response.statusText}`;
  return { ok: response.ok, answer };
}

const postJson = (route, body) => api.fetchApi(route, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

// {nodes: {<class>: {path, radius, handles}}, projection: {near, far}, mask: {alpha_threshold}}
export async function fetchEditorConfig() {
  const { ok, answer } = await answered(await api.fetchApi(EDITOR_ROUTE, { cache: "no-store" }));
  if (!ok) throw new Error(`camera editor: ${answer.error}`);
  return answer;
}

export async function fetchScene(key) {
  const response = await api.fetchApi(`${SCENE_ROUTE}/${encodeURIComponent(key)}`, { cache: "no-store" });
  if (!response.ok) return { ok: false, answer: (await answered(response)).answer };
  return { ok: true, scene: parseScene(await response.arrayBuffer()) };
}

// the path of a node's widget values on the clip it reported: the server runs the node's own path function
export async function fetchPath(nodeClass, clip, inputs) {
  return answered(await postJson(PATH_ROUTE, { node: nodeClass, clip, inputs }));
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

// the scene entry of a camera node that ran earlier on the same depth and frames as `node` (the server
// remembers it by the nodes upstream), without queueing
export async function findScene(node) {
  const { output } = await app.graphToPrompt();
  return answered(await postJson(SCENE_ROUTE, { node: executionId(node), prompt: output }));
}

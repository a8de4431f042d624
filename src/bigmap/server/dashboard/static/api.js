// The native API (/api/v1) with the user's token, kept in sessionStorage (closed with the tab).
const KEY = "bigmap.token";

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
    this.path = path;
  }
  // validation errors as [{path, msg}] (422), else one line
  get items() {
    if (Array.isArray(this.detail)) {
      return this.detail.map((d) => ({ path: d.path || (d.loc || []).join("."), msg: d.msg || String(d) }));
    }
    return [{ path: "", msg: this.message }];
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function headers(extra = {}) {
  const h = { ...extra };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

export async function call(method, path, { json, params, form, raw, signal } = {}) {
  let url = path.startsWith("/") ? path : `/api/v1/${path}`;
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === "") continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else q.append(k, v);
    }
    const s = q.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = new URLSearchParams(form);
  }
  const resp = await fetch(url, init);
  if (resp.status === 401 && !url.endsWith("/auth/token")) {
    onUnauthorized();
  }
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new ApiError(resp.status, detail, url);
  }
  if (raw) return resp;
  if (resp.status === 204) return null;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, params, opts = {}) => call("GET", path, { params, ...opts });

// Every item of a list endpoint: its pages, following the Link: <...>; rel="next" header.
export async function getAll(path, params) {
  let resp = await call("GET", path, { params, raw: true });
  const out = [];
  for (;;) {
    if (resp.status === 204) return out;
    out.push(...(await resp.json()));
    const next = /<([^>]+)>;\s*rel="next"/.exec(resp.headers.get("Link") || "");
    if (!next) return out;
    const u = new URL(next[1], location.origin);
    resp = await call("GET", u.pathname + u.search, { raw: true });
  }
}

export async function login(username, password) {
  const out = await call("POST", "auth/token", { form: { username, password } });
  token.set(out.access_token);
  return out;
}

// Save what an authenticated GET returns as a file (links cannot carry the bearer token).
export async function download(path, filename) {
  const resp = await call("GET", path, { raw: true });
  const blob = await resp.blob();
  saveBlob(blob, filename);
}

export function saveBlob(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// Server-sent events from /api/v1/events/stream, read with fetch so that the request carries
// the bearer token (EventSource cannot send headers). Reconnects after the stream ends.
export function liveStream(onMessage, onState) {
  let stopped = false;
  let ctrl = null;
  async function run() {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const resp = await fetch("/api/v1/events/stream", { headers: headers({ Accept: "text/event-stream" }), signal: ctrl.signal });
        if (resp.status === 401) { onUnauthorized(); return; }
        if (!resp.ok || !resp.body) throw new Error(`stream: ${resp.status}`);
        onState(true);
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).trim());
            }
            if (event === "change" && data.length) {
              try { onMessage(JSON.parse(data.join("\n"))); } catch (e) { console.error(e); }
            }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState(false);
      if (!stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  }
  run();
  return () => { stopped = true; if (ctrl) ctrl.abort(); onState(false); };
}

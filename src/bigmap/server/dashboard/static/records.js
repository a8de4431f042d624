// Requests and results: searchable tables, a request's page, a result's page (its data drawn,
// its provenance graph, downloads as JSON, JSON-LD where the broker offers it, raw files).
import { ApiError, call, download, get, saveBlob } from "./api.js";
import { esc, fmt, graph, groupSiblings } from "./plot.js";
import { tenantNames } from "./app.js";
import { renderResult } from "./render.js";
import { access, ago, badge, debounce, duration, json, short, sourceOf, when } from "./util.js";

const STATUSES = ["", "pending", "claimed", "resolved", "failed", "retracted"];

function searchBox(id, placeholder) { return `<input id="${id}" type="search" placeholder="${esc(placeholder)}" style="min-width:260px">`; }

function matches(text, q) {
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  const t = text.toLowerCase();
  return words.every((w) => t.includes(w));
}

export const requestTable = {
  create() {
    let el = null, rows = [], tn = {};
    const f = { q: new URLSearchParams(location.search).get("q") || "", status: "", quantity: "" };
    const draw = () => {
      const body = el.querySelector("tbody");
      const shown = rows.filter((r) => !f.q || matches([r.id, r.quantity, ...r.methods, r.status, tn[r.tenant_id]?.name, tn[r.claimed_by]?.name, r.campaign_id, r.result_id, r.access].join(" "), f.q));
      el.querySelector("#count").textContent = `${shown.length} of ${rows.length}`;
      body.innerHTML = shown.slice(0, 500).map((r) => `<tr><td><a class="mono" href="/ui/requests/${r.id}" data-link>${short(r.id)}</a>${access(r)}</td><td>${esc(r.quantity)}/${esc(r.claimed_method || r.methods.join("|"))}</td><td>${badge(r.status)}</td><td>${esc(tn[r.tenant_id]?.name || short(r.tenant_id))}</td><td>${r.claimed_by ? esc(tn[r.claimed_by]?.name || short(r.claimed_by)) : "–"}</td><td>${r.campaign_id ? `<a href="/ui/campaigns/${r.campaign_id}" data-link class="mono">${short(r.campaign_id)}</a>` : "–"}</td><td>${when(r.created_at)}</td><td>${r.result_id ? `<a href="/ui/results/${r.result_id}" data-link class="mono">${short(r.result_id)}</a>` : "–"}</td></tr>`).join("");
    };
    const load = async () => {
      [rows, tn] = await Promise.all([get("requests", { newest_first: true, limit: 2000, status: f.status || undefined, quantity: f.quantity || undefined }), tenantNames()]);
      draw();
    };
    const refresh = debounce(load, 300);
    return {
      async render(e) {
        el = e;
        el.innerHTML = `<h1>Requests</h1><div class="panel"><div class="row">${searchBox("search", "search id, capability, tenant, campaign…")}
          <label>status</label><select id="status">${STATUSES.map((s) => `<option value="${s}">${s || "any"}</option>`).join("")}</select>
          <label>quantity</label><input id="quantity" placeholder="e.g. conductivity" style="width:160px"><span class="muted" id="count"></span></div>
          <table id="requests"><thead><tr><th>request</th><th>capability</th><th>status</th><th>asked by</th><th>claimed by</th><th>campaign</th><th>created</th><th>result</th></tr></thead><tbody></tbody></table></div>`;
        el.querySelector("#search").value = f.q;
        el.querySelector("#search").addEventListener("input", (ev) => { f.q = ev.target.value; draw(); });
        el.querySelector("#status").addEventListener("change", (ev) => { f.status = ev.target.value; load(); });
        el.querySelector("#quantity").addEventListener("change", (ev) => { f.quantity = ev.target.value.trim(); load(); });
        await load();
      },
      onChange(msg) { if (msg.topics.includes("requests")) refresh(); },
    };
  },
};

function dataSummary(d) {
  const out = [];
  const go = (v, path) => {
    if (out.length >= 3) return;
    if (typeof v === "number") out.push(`${path.slice(-2).join(".")} = ${fmt(v)}`);
    else if (Array.isArray(v) && v.length && typeof v[0] === "number" && path.length) out.push(`${path.slice(-2).join(".")} = ${fmt(v[0])}${v.length > 1 ? "…" : ""}`);
    else if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) if (!["meta", "run_info", "model"].includes(k)) go(x, [...path, k]);
  };
  go(d, []);
  return out.join(", ");
}

export const resultTable = {
  create() {
    let el = null, rows = [], tn = {};
    const f = { q: "", quantity: "", method: "" };
    const draw = () => {
      const shown = rows.filter((r) => !f.q || matches([r.id, r.quantity, r.method, r.status, tn[r.tenant_id]?.name, r.request_id, r.access, JSON.stringify(r.data).slice(0, 2000)].join(" "), f.q));
      el.querySelector("#count").textContent = `${shown.length} of ${rows.length}`;
      el.querySelector("tbody").innerHTML = shown.slice(0, 500).map((r) => `<tr><td><a class="mono" href="/ui/results/${r.id}" data-link>${short(r.id)}</a>${access(r)}</td><td>${esc(r.quantity)}/${esc(r.method)}</td><td>${badge(r.status)}</td><td>${esc(tn[r.tenant_id]?.name || short(r.tenant_id))}</td><td>${badge(sourceOf(r, tn[r.tenant_id]).kind, "")}</td><td><a class="mono" href="/ui/requests/${r.request_id}" data-link>${short(r.request_id)}</a></td><td class="muted">${esc(dataSummary(r.data))}</td><td>${when(r.created_at)}</td></tr>`).join("");
    };
    const load = async () => {
      [rows, tn] = await Promise.all([get("results", { newest_first: true, limit: 2000, quantity: f.quantity || undefined, method: f.method || undefined }), tenantNames()]);
      draw();
    };
    const refresh = debounce(load, 300);
    return {
      async render(e) {
        el = e;
        el.innerHTML = `<h1>Results</h1><div class="panel"><div class="row">${searchBox("search", "search id, capability, tenant, values…")}
          <label>quantity</label><input id="quantity" style="width:160px"><label>method</label><input id="method" style="width:140px"><span class="muted" id="count"></span></div>
          <table id="results"><thead><tr><th>result</th><th>capability</th><th>status</th><th>tenant</th><th>source</th><th>request</th><th>data</th><th>created</th></tr></thead><tbody></tbody></table></div>`;
        el.querySelector("#search").addEventListener("input", (ev) => { f.q = ev.target.value; draw(); });
        el.querySelector("#quantity").addEventListener("change", (ev) => { f.quantity = ev.target.value.trim(); load(); });
        el.querySelector("#method").addEventListener("change", (ev) => { f.method = ev.target.value.trim(); load(); });
        await load();
      },
      onChange(msg) { if (msg.topics.includes("results")) refresh(); },
    };
  },
};

export const requestPage = {
  create(id) {
    let el = null;
    const load = async () => {
      const [r, log, kids, tn] = await Promise.all([get(`requests/${id}`), get(`requests/${id}/log`), get(`requests/${id}/children`), tenantNames()]);
      const si = r.status_info || {};
      el.innerHTML = `<h1>Request <span class="mono">${short(r.id)}</span> ${badge(r.status)}${access(r)}</h1>
      <div class="grid2"><div class="panel"><div class="kv">
        <span>id</span><span class="mono">${esc(r.id)}</span>
        <span>capability</span><span><a href="/ui/capabilities/${esc(r.quantity)}/${esc(r.claimed_method || r.methods[0])}" data-link>${esc(r.quantity)}</a> by ${r.methods.map(esc).join(" or ")}</span>
        <span>asked by</span><span>${esc(tn[r.tenant_id]?.name || short(r.tenant_id))}</span>
        <span>claimed by</span><span>${r.claimed_by ? `${esc(tn[r.claimed_by]?.name || short(r.claimed_by))} (${esc(r.claimed_method || "")}), lease ${when(r.lease_expires_at)}` : "–"}</span>
        ${si.progress ? `<span>progress</span><span>${si.progress.fraction !== null && si.progress.fraction !== undefined ? Math.round(100 * si.progress.fraction) + " % " : ""}${esc(si.progress.message || "")}</span>` : ""}
        ${si.last_error ? `<span>error</span><span class="error">${esc(si.last_error.kind || "")}: ${esc(si.last_error.message || "")}</span>` : ""}
        ${si.servable === false ? `<span>servable</span><span class="error">no: ${esc(si.unservable_reason || si.reason || "no active tenant provides it")}</span>` : ""}
        <span>parent</span><span>${r.parent_id ? `<a class="mono" href="/ui/requests/${r.parent_id}" data-link>${short(r.parent_id)}</a>` : "–"}</span>
        <span>campaign</span><span>${r.campaign_id ? `<a class="mono" href="/ui/campaigns/${r.campaign_id}" data-link>${short(r.campaign_id)}</a>` : "–"}</span>
        <span>result</span><span>${r.result_id ? `<a id="result-link" href="/ui/results/${r.result_id}" data-link>${short(r.result_id)}</a>` : "none yet"}</span>
        <span>priority</span><span>${r.priority}</span><span>attempts</span><span>${r.attempts}</span>
        <span>created</span><span>${when(r.created_at)}</span>
      </div></div>
      <div class="panel"><h2>Parameters</h2>${json(r.parameters)}</div></div>
      <div class="grid2" style="margin-top:14px"><div class="panel"><h2>Status log</h2><table><tbody>${log.map((l) => `<tr><td>${when(l.at)}</td><td>${esc(l.old_status || "")} → ${badge(l.new_status)}</td><td>${esc(l.user || "")}</td><td class="muted">${esc(l.message)}</td></tr>`).join("")}</tbody></table></div>
      <div class="panel"><h2>Sub-requests</h2>${kids.length ? `<table><tbody>${kids.map((k) => `<tr><td><a class="mono" href="/ui/requests/${k.id}" data-link>${short(k.id)}</a></td><td>${esc(k.quantity)}</td><td>${badge(k.status)}</td></tr>`).join("")}</tbody></table>` : `<p class="muted">none</p>`}</div></div>`;
    };
    const refresh = debounce(load, 300);
    return { async render(e) { el = e; await load(); }, onChange(msg) { if (msg.topics.includes("requests") || msg.topics.includes("results")) refresh(); } };
  },
};

// ---------------------------------------------------------------- provenance

async function tryGet(path) {
  try { return await get(path); } catch (e) { if (e instanceof ApiError && [404, 405, 501].includes(e.status)) return null; throw e; }
}

// The graph from the broker's provenance endpoint when it has one, else from the result's
// provenance record and the request's parent chain, children and campaign.
// PROV-JSON (W3C member submission) -> nodes and edges in the direction data flows
const PROV_EDGES = {
  wasGeneratedBy: ["prov:activity", "prov:entity", "generated"],
  used: ["prov:entity", "prov:activity", "used by"],
  wasAssociatedWith: ["prov:agent", "prov:activity", "acted"],
  wasAttributedTo: ["prov:agent", "prov:entity", "attributed"],
  wasDerivedFrom: ["prov:usedEntity", "prov:generatedEntity", "derived"],
  wasInformedBy: ["prov:informant", "prov:informed", "informed"],
  actedOnBehalfOf: ["prov:responsible", "prov:delegate", "on behalf"],
  wasInfluencedBy: ["prov:influencer", "prov:influencee", "influenced"],
};

export function provJsonGraph(doc, selfId) {
  const nodes = [], edges = [];
  for (const kind of ["entity", "activity", "agent"]) {
    for (const [id, a] of Object.entries(doc[kind] || {})) {
      const types = [].concat(a["prov:type"] || []).map(String);
      const t = (types.find((x) => x.startsWith("bigmap:")) || types[0] || kind).replace(/^\w+:/, "");
      const uuid = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/.exec(id)?.[1];
      const page = /Result/.test(t) ? "results" : /Request/.test(t) ? "requests" : /Campaign/.test(t) ? "campaigns" : null;
      const label = a["prov:label"] || (uuid ? `${t} ${short(uuid)}` : id);
      nodes.push({ id, label: String(label), sub: `${t} (${kind})`, href: page && uuid ? `/ui/${page}/${uuid}` : undefined, self: id === doc["bigmap:root"] || (uuid && uuid === selfId && /Result/.test(t)) });
    }
  }
  const ids = new Set(nodes.map((n) => n.id));
  for (const [section, [from, to, label]] of Object.entries(PROV_EDGES)) {
    for (const r of Object.values(doc[section] || {})) {
      if (ids.has(r[from]) && ids.has(r[to])) edges.push({ from: r[from], to: r[to], label: String(r["prov:type"] || label).replace(/^\w+:/, "") });
    }
  }
  // columns: the longest path from a source, so that data flows left to right
  const depth = Object.fromEntries(nodes.map((n) => [n.id, 0]));
  for (let k = 0; k < nodes.length; k++) {
    let moved = false;
    for (const e of edges) if (depth[e.to] < depth[e.from] + 1 && depth[e.from] < nodes.length) { depth[e.to] = depth[e.from] + 1; moved = true; }
    if (!moved) break;
  }
  nodes.forEach((n) => { n.col = depth[n.id]; });
  return { nodes, edges };
}

// The graph from the broker's provenance endpoint (PROV-JSON) when it has one, else from the
// result's provenance record and the request's parent chain, children and campaign.
async function provenanceGraph(res, tn) {
  const fromApi = await tryGet(`provenance/${res.id}`);
  if (fromApi && (fromApi.entity || fromApi.activity)) {
    return { ...provJsonGraph(fromApi, res.id), source: "the broker's provenance graph (W3C PROV, /api/v1/provenance)", kind: "prov" };
  }
  const nodes = [], edges = [];
  const add = (n) => { if (!nodes.some((m) => m.id === n.id)) nodes.push(n); };
  const p = res.provenance || {};
  const req = await tryGet(`requests/${res.request_id}`);
  add({ id: res.id, label: `result ${short(res.id)}`, sub: `${res.quantity}/${res.method}`, col: 3, self: true });
  if (req) {
    add({ id: req.id, label: `request ${short(req.id)}`, sub: `${req.quantity} · ${req.status}`, col: 2, href: `/ui/requests/${req.id}` });
    edges.push({ from: req.id, to: res.id, label: "answered by" });
    if (req.tenant_id) { add({ id: `t:${req.tenant_id}`, label: tn[req.tenant_id]?.name || short(req.tenant_id), sub: "asked (tenant)", col: 1 }); edges.push({ from: `t:${req.tenant_id}`, to: req.id, label: "asked" }); }
    // the chain of parents: each one asked for the one after it
    let child = req, col = 1;
    for (let k = 0; k < 10 && child.parent_id; k++) {
      const parent = await tryGet(`requests/${child.parent_id}`);
      if (!parent) { add({ id: child.parent_id, label: `request ${short(child.parent_id)}`, sub: "not visible to you", col }); edges.push({ from: child.parent_id, to: child.id, label: "sub-request" }); break; }
      add({ id: parent.id, label: `request ${short(parent.id)}`, sub: `${parent.quantity} · ${parent.status}`, col, href: `/ui/requests/${parent.id}` });
      edges.push({ from: parent.id, to: child.id, label: "sub-request" });
      child = parent; col -= 1;
    }
    if (child.campaign_id || req.campaign_id) {
      const cid = req.campaign_id || child.campaign_id;
      add({ id: cid, label: `campaign ${short(cid)}`, sub: "proposed by its planner", col: col - (child === req ? 0 : 0), href: `/ui/campaigns/${cid}` });
      edges.push({ from: cid, to: child.id, label: "proposed" });
    }
    const kids = (await tryGet(`requests/${req.id}/children`)) || [];
    for (const k of kids) {
      add({ id: k.id, label: `sub-request ${short(k.id)}`, sub: `${k.quantity} · ${k.status}`, col: 1, href: `/ui/requests/${k.id}` });
      edges.push({ from: req.id, to: k.id, label: "asked" });
      if (k.result_id) { add({ id: k.result_id, label: `result ${short(k.result_id)}`, sub: k.quantity, col: 2, href: `/ui/results/${k.result_id}` }); edges.push({ from: k.id, to: k.result_id, label: "" }); edges.push({ from: k.result_id, to: res.id, label: "input" }); }
    }
  }
  for (const inp of Array.isArray(p.inputs) ? p.inputs : []) {
    const idv = typeof inp === "string" ? inp : inp?.result_id || inp?.request_id || inp?.id;
    if (!idv || nodes.some((n) => n.id === idv)) continue;
    const r = (await tryGet(`results/${idv}`)) || null;
    const q = r ? null : await tryGet(`requests/${idv}`);
    add({ id: idv, label: `${r ? "result" : "request"} ${short(idv)}`, sub: r ? `${r.quantity}/${r.method}` : q ? `${q.quantity} · ${q.status}` : "input", col: 2, href: r ? `/ui/results/${idv}` : `/ui/requests/${idv}` });
    edges.push({ from: idv, to: res.id, label: "input" });
  }
  const tenant = p.tenant || (res.tenant_id ? { id: res.tenant_id, name: tn[res.tenant_id]?.name } : null);
  if (tenant) { add({ id: `t:${tenant.id}`, label: tenant.name || short(tenant.id), sub: `computed it (${tenant.kind || "tenant"})`, col: 2 }); edges.push({ from: `t:${tenant.id}`, to: res.id, label: "generated" }); }
  const sw = res.software || p.software;
  if (sw) { add({ id: "software", label: `${sw.name || "software"} ${sw.version || ""}`, sub: "software", col: 2 }); edges.push({ from: "software", to: res.id, label: "used" }); }
  for (const f of res.files || []) { add({ id: `f:${f.id}`, label: f.name, sub: `${f.media_type} · ${f.size} B`, col: 4 }); edges.push({ from: res.id, to: `f:${f.id}`, label: "raw file" }); }
  if (res.amends) { add({ id: res.amends, label: `result ${short(res.amends)}`, sub: "amended by this one", col: 2, href: `/ui/results/${res.amends}` }); edges.push({ from: res.amends, to: res.id, label: "amended" }); }
  return { nodes, edges, source: "the result's provenance record and its request chain", kind: "record" };
}

const JSONLD_PATHS = (id) => [`results/${id}.jsonld`, `jsonld/results/${id}`];

export const resultPage = {
  create(id) {
    return {
      async render(el) {
        const [res, tn] = await Promise.all([get(`results/${id}`), tenantNames()]);
        const cap = await tryGet(`capabilities/${res.quantity}/${res.method}`);
        el.innerHTML = `<h1>Result <span class="mono">${short(res.id)}</span> · ${esc(res.quantity)}/${esc(res.method)} ${badge(res.status)}${access(res)}</h1>
        <div class="grid2"><div class="panel"><div class="kv">
          <span>id</span><span class="mono">${esc(res.id)}</span>
          <span>request</span><span><a class="mono" href="/ui/requests/${res.request_id}" data-link>${short(res.request_id)}</a></span>
          <span>tenant</span><span>${esc(tn[res.tenant_id]?.name || short(res.tenant_id))}</span>
          <span>source</span><span id="result-source">${badge(sourceOf(res, tn[res.tenant_id]).kind, "")} ${esc(sourceOf(res, tn[res.tenant_id]).label)}</span>
          <span>software</span><span>${res.software ? `${esc(res.software.name || "")} ${esc(res.software.version || "")}` : "–"}</span>
          <span>created</span><span>${when(res.created_at)}</span>
          <span>runtime</span><span>${res.provenance?.runtime_seconds !== undefined ? `${fmt(res.provenance.runtime_seconds)} s` : "–"}</span>
          ${res.provenance?.emulated || res.provenance?.instrument?.emulated ? `<span>instrument</span><span class="error">emulated</span>` : ""}
          <span>sha256</span><span class="mono" style="word-break:break-all">${esc(res.sha256)}</span>
        </div></div>
        <div class="panel" id="downloads"><h2>Download</h2><div class="row">
          <button id="dl-json">JSON</button><button id="dl-jsonld" disabled title="looking for a JSON-LD export…">JSON-LD</button>
        </div><h3>Raw files</h3>${(res.files || []).length ? `<table id="files"><tbody>${res.files.map((f) => `<tr><td><a href="#" data-file="${f.id}" data-name="${esc(f.name)}">${esc(f.name)}</a></td><td class="muted">${esc(f.media_type)}</td><td class="num">${f.size} B</td></tr>`).join("")}</tbody></table>` : `<p class="muted">none</p>`}</div></div>
        <div id="rendered" style="margin-top:14px"><p class="muted">drawing…</p></div>
        <div class="panel" id="provenance"><h2>Provenance</h2><div id="prov-graph"><p class="muted">tracing…</p></div></div>
        <details class="panel"><summary>Data (JSON)</summary>${json(res.data)}</details>
        <details class="panel"><summary>Parameters and provenance record</summary>${json({ parameters: res.parameters, provenance: res.provenance })}</details>`;
        el.querySelector("#dl-json").addEventListener("click", () => saveBlob(new Blob([JSON.stringify(res, null, 2)], { type: "application/json" }), `result-${res.id}.json`));
        el.querySelectorAll("[data-file]").forEach((a) => a.addEventListener("click", (ev) => { ev.preventDefault(); download(`files/${a.dataset.file}`, a.dataset.name); }));
        (async () => {
          const b = el.querySelector("#dl-jsonld");
          for (const path of JSONLD_PATHS(res.id)) {
            try {
              const resp = await call("GET", path, { raw: true });
              if (!resp.ok) continue;
              b.disabled = false; b.title = `from /api/v1/${path}`;
              b.addEventListener("click", () => download(path, `result-${res.id}.jsonld`));
              return;
            } catch { /* not offered at this path */ }
          }
          b.title = "this broker offers no JSON-LD export of results yet";
        })();
        try { await renderResult(el.querySelector("#rendered"), res, cap); } catch (e) { el.querySelector("#rendered").innerHTML = `<p class="error">${esc(e.message)}</p>`; }
        const g = await provenanceGraph(res, tn);
        const expanded = new Set();
        const box = el.querySelector("#prov-graph");
        box.dataset.source = g.kind;
        const drawGraph = () => {
          const shown = groupSiblings(g, expanded);
          box.querySelector("#prov-svg").innerHTML = graph(shown);
          box.dataset.grouped = shown.grouped;
          box.querySelectorAll("[data-group]").forEach((n) => n.addEventListener("click", () => { expanded.add(n.dataset.group); drawGraph(); }));
        };
        box.innerHTML = `<div style="overflow:auto" id="prov-svg"></div><p class="chart-note">From ${esc(g.source)}. ${res.provenance?.claimed_at ? `Requested ${when(res.provenance.requested_at)}, claimed after ${duration(res.provenance.requested_at, res.provenance.claimed_at)}, answered after ${duration(res.provenance.requested_at, res.provenance.created_at)}.` : "Posted unsolicited (no request was claimed for it)."}</p>`;
        drawGraph();
      },
    };
  },
};

// Tenants (alive by heartbeat, what each holds and since when) and the capability catalogue
// with its templates and a form that posts a request (422 errors shown with their JSON paths).
import { ApiError, call, get, getAll } from "./api.js";
import { esc, fmt } from "./plot.js";
import { state, tenantNames, navigate } from "./app.js";
import { badge, debounce, duration, json, short, when } from "./util.js";

export const tenants = {
  create() {
    let el = null, rows = [];
    const draw = () => {
      el.innerHTML = `<h1>Tenants</h1><div class="panel"><table id="tenants"><thead><tr><th>tenant</th><th>kind</th><th>owner</th><th>heartbeat</th><th>software</th><th>provides</th><th>claims now (held for · lease)</th></tr></thead><tbody>
      ${rows.map((t) => `<tr data-tenant="${esc(t.name)}"><td><b>${esc(t.name)}</b><div class="muted mono">${short(t.id)}</div>${t.description ? `<div class="muted">${esc(t.description)}</div>` : ""}</td>
        <td>${esc(t.kind)}</td><td>${esc(t.owner)}</td>
        <td>${!t.is_active ? badge("inactive") : t.alive ? badge("alive") : `<span class="badge dead">${t.last_seen_at ? "silent" : "never seen"}</span>`}<div class="muted">last seen ${when(t.last_seen_at)}</div></td>
        <td>${t.software ? `${esc(t.software.name || "")} ${esc(t.software.version || "")}` : "–"}</td>
        <td>${t.provides.map((p) => `<a href="/ui/capabilities/${esc(p.quantity)}/${esc(p.method)}" data-link>${esc(p.quantity)}/${esc(p.method)}</a>`).join("<br>") || "<span class='muted'>asks only</span>"}</td>
        <td>${t.claims.length ? t.claims.map((c) => `<a class="mono" href="/ui/requests/${c.request_id}" data-link>${short(c.request_id)}</a> · ${esc(duration(c.since))} · lease ${when(c.lease_expires_at)}`).join("<br>") : "<span class='muted'>none</span>"}</td></tr>`).join("")}
      </tbody></table>${rows.length ? "" : `<p class="muted">No tenant has registered yet (<code>bigmap worker NAME</code>).</p>`}
      <p class="chart-note">A tenant is alive while its heartbeats arrive (a worker sends them while it polls for work).</p></div>`;
    };
    const load = async () => { rows = await getAll("tenants"); state.tenants = Object.fromEntries(rows.map((t) => [t.id, t])); draw(); };
    const refresh = debounce(load, 200);
    return {
      async render(e) { el = e; await load(); this.timer = setInterval(refresh, 5000); },
      onChange(msg) { if (msg.topics.includes("tenants") || msg.topics.includes("requests")) refresh(); },
      dispose() { clearInterval(this.timer); },
    };
  },
};

function errorList(e) {
  if (!(e instanceof ApiError)) return `<p class="error">${esc(e.message || e)}</p>`;
  return `<p class="error">${e.status === 422 ? "The broker refused the request (422):" : `${e.status}: `}</p><ul class="errors error" id="form-errors">${e.items.map((d) => `<li>${d.path ? `<code class="path">${esc(d.path)}</code> ` : ""}${esc(d.msg)}</li>`).join("")}</ul>`;
}

export const capabilities = {
  create(q0, m0) {
    let el = null, caps = [], filter = "", posted = null;
    // the request posted from the form: its status follows the live updates
    const followPosted = debounce(async () => {
      if (!posted || !el) return;
      const box = el.querySelector("#form-success .status");
      if (!box) return;
      const r = await get(`requests/${posted}`);
      box.innerHTML = `${badge(r.status)}${r.result_id ? ` · <a id="posted-result" href="/ui/results/${r.result_id}" data-link>result</a>` : ""}`;
    }, 150);
    async function drawList() {
      const list = el.querySelector("#cap-list");
      const f = filter.toLowerCase();
      list.innerHTML = caps.filter((c) => !f || `${c.quantity}/${c.method} ${c.description}`.toLowerCase().includes(f)).map((c) => `<a href="/ui/capabilities/${esc(c.quantity)}/${esc(c.method)}" data-link class="${c.quantity === q0 && c.method === m0 ? "active" : ""}">${esc(c.quantity)}/${esc(c.method)} <span class="muted">${c.providers ? `· ${c.providers} provider${c.providers > 1 ? "s" : ""}` : "· no provider"}</span></a>`).join("") || `<p class="muted">none</p>`;
    }
    async function drawDetail() {
      const box = el.querySelector("#cap-detail");
      if (!q0) { box.innerHTML = `<p class="muted">Choose a capability to see its templates and to ask for it.</p>`; return; }
      const [cap, tpl, tn] = await Promise.all([get(`capabilities/${q0}/${m0}`), get(`capabilities/${q0}/${m0}/template`), tenantNames(true)]);
      const me = state.me;
      const rank = (t) => (t.kind === "planner" ? 0 : t.provides.length ? 2 : 1);
      const mine = Object.values(tn).filter((t) => t.owner === me.name).sort((a, b) => rank(a) - rank(b));
      cap.providers = caps.find((c) => c.quantity === cap.quantity && c.method === cap.method)?.providers ?? cap.providers;
      const canWrite = me.role !== "observer";
      box.innerHTML = `<h2>${esc(cap.quantity)}/${esc(cap.method)}</h2>
        <p>${esc(cap.description || "")}</p>
        <div class="kv"><span>providers</span><span>${cap.providers}</span><span>cost</span><span>${esc(fmt(cap.cost))}</span><span>fidelity</span><span>${esc(fmt(cap.fidelity))}</span>
        ${cap.iri ? `<span>ontology</span><span class="mono">${esc(cap.iri)}</span>` : ""}
        ${Object.keys(cap.units || {}).length ? `<span>units</span><span>${Object.entries(cap.units).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join(", ")}</span>` : ""}</div>
        <div class="grid2" style="margin-top:10px">
          <div><h3>Parameter template</h3>${json(tpl.parameters)}<details><summary>parameter schema</summary>${json(cap.parameter_schema)}</details></div>
          <div><h3>Result template</h3>${json(tpl.result)}<details><summary>result schema</summary>${json(cap.result_schema)}</details></div>
        </div>
        <h3 id="ask">Ask for it</h3>
        ${!canWrite ? `<p class="muted">Observers read; they cannot post requests.</p>` : `
        <form id="request-form">
          <div class="row">
            <label for="tenant">as tenant</label><select id="tenant" name="tenant">${mine.map((t) => `<option value="${t.id}">${esc(t.name)}</option>`).join("")}</select>
            ${mine.length ? "" : `<button type="button" id="new-tenant">Register a tenant to ask with</button>`}
            <label for="priority">priority</label><input id="priority" name="priority" type="number" value="0" min="-1000" max="1000" style="width:80px">
            <label for="access">access</label><select id="access" name="access"><option>public</option><option>restricted</option><option>confidential</option></select>
            <input id="groups" name="groups" placeholder="groups (restricted)" style="width:160px">
            <label title="keep it pending when no running tenant can serve it now (a tenant yet to come); without it such a request is refused with the reason"><input id="queue" name="queue" type="checkbox"> queue if no tenant can serve it now</label>
          </div>
          <label for="parameters">parameters (JSON; the broker validates them against the schema)</label>
          <textarea id="parameters" name="parameters" spellcheck="false">${esc(JSON.stringify(tpl.parameters, null, 2))}</textarea>
          <div class="row"><button class="primary" type="submit" id="submit">Submit request</button><button type="button" id="reset">Reset to template</button><span id="form-ok" class="ok"></span></div>
          <div id="form-result" role="alert"></div>
        </form>`}`;
      const form = box.querySelector("#request-form");
      if (!form) return;
      box.querySelector("#new-tenant")?.addEventListener("click", async () => {
        try {
          await call("POST", "tenants", { json: { name: `${me.name}-dashboard`, kind: "planner", description: `requests ${me.name} makes from the dashboard` } });
          await drawDetail();
        } catch (e) { box.querySelector("#form-result").innerHTML = errorList(e); }
      });
      box.querySelector("#reset").addEventListener("click", () => { box.querySelector("#parameters").value = JSON.stringify(tpl.parameters, null, 2); });
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const out = box.querySelector("#form-result");
        out.innerHTML = "";
        let params;
        try { params = JSON.parse(box.querySelector("#parameters").value); } catch (e) {
          out.innerHTML = `<p class="error" id="json-error">Not valid JSON: ${esc(e.message)}</p>`;
          return;
        }
        const tenant_id = box.querySelector("#tenant").value;
        if (!tenant_id) { out.innerHTML = `<p class="error">Choose (or register) a tenant of yours to ask with.</p>`; return; }
        const access = box.querySelector("#access").value;
        const groups = box.querySelector("#groups").value.split(",").map((s) => s.trim()).filter(Boolean);
        try {
          const req = await call("POST", "requests", { params: { queue: box.querySelector("#queue").checked || undefined }, json: { quantity: cap.quantity, methods: [cap.method], parameters: { [cap.method]: params }, tenant_id, priority: Number(box.querySelector("#priority").value) || 0, access, access_groups: groups } });
          const serv = req.status_info?.servable === false ? ` <span class="muted">(no active tenant can serve it now: ${esc(req.status_info.unservable_reason || req.status_info.reason || "no active tenant provides it")})</span>` : "";
          posted = req.id;
          out.innerHTML = `<p class="ok" id="form-success">Request <a class="mono" href="/ui/requests/${req.id}" data-link>${short(req.id)}</a> posted: <span class="status">${badge(req.status)}</span>${serv}</p>`;
          followPosted();
        } catch (e) { out.innerHTML = errorList(e); }
      });
    }
    return {
      async render(e) {
        el = e;
        caps = await getAll("capabilities");
        if (!q0 && caps.length) {
          const first = caps.find((c) => c.providers) || caps[0];
          navigate(`/ui/capabilities/${first.quantity}/${first.method}`, true);
          return;
        }
        el.innerHTML = `<h1>Capabilities</h1><div class="cols"><div class="panel"><input id="cap-filter" placeholder="filter" style="width:100%;margin-bottom:6px"><div id="cap-list" class="cap-list"></div></div><div class="panel" id="cap-detail"></div></div>`;
        el.querySelector("#cap-filter").addEventListener("input", (ev) => { filter = ev.target.value; drawList(); });
        await drawList();
        await drawDetail();
      },
      onChange(msg) { if (msg.topics.includes("requests") || msg.topics.includes("results")) followPosted(); },
    };
  },
};

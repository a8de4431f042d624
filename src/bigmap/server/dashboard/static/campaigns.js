// Campaigns: the list, and a campaign page that draws what the planner records
// (docs/campaigns.md: summary, proposal / observation / model_state / decision / stop events).
import { call, get, getAll } from "./api.js";
import { bars, chart, esc, fmt, heatmap } from "./plot.js";
import { tenantNames } from "./app.js";
import { access, ago, badge, debounce, duration, json, progressBar, short, when } from "./util.js";

const TERMINAL = ["stopped", "completed", "failed"];

function objectivesOf(c) {
  const s = c.summary || {};
  if (Array.isArray(s.objectives) && s.objectives.length) return s.objectives;
  const spec = c.spec?.objectives;
  if (Array.isArray(spec)) return spec.map((o) => (typeof o === "string" ? { name: o } : o));
  return [];
}

function progressOf(c) {
  const s = c.summary || {};
  const total = s.budget?.requests;
  const done = (s.n_results || 0) + (s.n_failed || 0);
  return total ? progressBar(done, total, `${done} / ${total} requests`) : `<span class="muted">${s.n_requests ?? 0} requests</span>`;
}

export const list = {
  create() {
    let el = null;
    const load = async () => {
      const rows = await getAll("campaigns");
      el.innerHTML = `<h1>Campaigns</h1>
      <div class="panel">${rows.length ? `<table id="campaigns"><thead><tr><th>name</th><th>status</th><th>control</th><th>owner</th><th>progress</th><th>best</th><th class="num">events</th><th>updated</th></tr></thead><tbody>
      ${rows.map((c) => {
        const s = c.summary || {};
        const o = objectivesOf(c)[0];
        const best = s.best?.y && o ? `${fmt(s.best.y[o.name])} ${esc(o.unit || "")}` : "–";
        return `<tr data-id="${c.id}"><td><a href="/ui/campaigns/${c.id}" data-link>${esc(c.name)}</a>${access(c)}</td><td>${badge(c.status)}</td><td>${esc(c.control)}</td><td>${esc(c.owner)}</td><td>${progressOf(c)}</td><td>${best}</td><td class="num">${c.n_events}</td><td>${when(c.updated_at)}</td></tr>`;
      }).join("")}</tbody></table>` : `<p class="muted">No campaign you may see yet. A planner starts one (<code>bigmap campaign run</code>, docs/campaigns.md).</p>`}</div>`;
    };
    const refresh = debounce(load, 200);
    return {
      async render(e) { el = e; await load(); },
      onChange(msg) { if (msg.topics.includes("campaigns")) refresh(); },
    };
  },
};

// best-so-far points from the observations of one source ("measured" or "model"), against
// all requests answered and the cost spent, so that predictions never pass for measurements
function bestSoFar(obs, objective, source, srcOf) {
  const sign = objective?.direction === "minimize" ? -1 : 1;
  let best = null, n = 0, cost = 0;
  const out = [];
  for (const o of obs) {
    n += 1;
    cost += Number(o.data.cost) || 0;
    const v = o.data.y?.[objective?.name];
    if (srcOf(o) === source && !o.data.failed && Number.isFinite(v) && (best === null || sign * v > sign * best)) best = v;
    if (best !== null) out.push({ n, cost, value: best });
  }
  return out;
}

// "measured" or "model" for an observation: the kind of tenant that answered its request
// (an instrument measures), else the measurement's fidelity in the spec (1 = reference)
function sourceFn(camp, reqs, tn) {
  const byReq = Object.fromEntries(reqs.map((r) => [r.id, r]));
  const fid = Object.fromEntries((camp.spec?.measurements || []).map((m) => [m.capability, m.fidelity ?? 1]));
  return (o) => {
    const r = byReq[o.data.request_id];
    const kind = r?.claimed_by ? tn[r.claimed_by]?.kind : null;
    if (kind === "instrument") return "measured";
    if (kind === "simulation" || kind === "analysis") return "model";
    return (fid[o.data.capability] ?? 1) >= 1 ? "measured" : "model";
  };
}

function predicted(cand, objective) {
  const p = cand.predicted;
  if (!p) return null;
  let mean = p.mean, std = p.std;
  if (mean && typeof mean === "object") mean = mean[objective];
  if (std && typeof std === "object") std = std[objective];
  return Number.isFinite(mean) ? { mean, std: Number.isFinite(std) ? std : 0 } : null;
}

function paretoMask(points, dirs) {
  return points.map((p, i) => !points.some((q, j) => j !== i && dirs.every((d, k) => d * q[k] >= d * p[k]) && dirs.some((d, k) => d * q[k] > d * p[k])));
}

export const detail = {
  create(id) {
    let el = null, camp = null, events = [], reqs = [], lastSeq = 0, modelStep = null, pair = [0, 1];
    const me = () => import("./app.js").then((m) => m.state.me);

    async function fetchAll() {
      const [c, evs, rq, tn] = await Promise.all([
        get(`campaigns/${id}`),
        get(`campaigns/${id}/events`, { after: lastSeq }),
        getAll(`campaigns/${id}/requests`),
        tenantNames(),
      ]);
      camp = c;
      for (const e of evs) events.push(e);
      if (evs.length) lastSeq = evs[evs.length - 1].seq;
      reqs = rq;
      return tn;
    }

    function controls(user) {
      const mine = user && (user.role === "admin" || user.name === camp.owner);
      const done = TERMINAL.includes(camp.status);
      const runLabel = camp.status === "created" ? "Start" : "Resume";
      const dis = (cond) => (!mine || done || cond ? "disabled" : "");
      return `<div class="row" id="controls">
        <button class="primary" data-control="run" ${dis(camp.control === "run" && camp.status !== "paused")}>${runLabel}</button>
        <button data-control="pause" ${dis(camp.control === "pause")}>Pause</button>
        <button data-control="stop" ${dis(camp.control === "stop")}>Stop</button>
        <span class="muted">${mine ? (done ? `the campaign has ${esc(camp.status)}` : `the planner obeys <code>control</code> = <b id="control-now">${esc(camp.control)}</b>`) : "only its owner or an admin can steer it"}</span>
        <span id="control-error" class="error"></span></div>`;
    }

    function draw(tn, user) {
      const s = camp.summary || {};
      const objs = objectivesOf(camp);
      const o0 = objs[0];
      const unit = o0?.unit ? ` [${o0.unit}]` : "";
      const proposals = events.filter((e) => e.kind === "proposal");
      const obs = events.filter((e) => e.kind === "observation");
      const models = events.filter((e) => e.kind === "model_state" && e.data.grid);
      const decisions = events.filter((e) => e.kind === "decision" || e.kind === "stop");
      const srcOf = sourceFn(camp, reqs, tn);
      const bsfMeasured = bestSoFar(obs, o0, "measured", srcOf), bsfModel = bestSoFar(obs, o0, "model", srcOf);
      const budget = s.budget || {};

      // proposals against results, matched by request id
      const byReq = {};
      for (const p of proposals) for (const c of p.data.candidates || []) if (c.request_id) byReq[c.request_id] = { cand: c, step: p.data.step };
      const parity = [], observed = [], predictedPts = [];
      for (const e of obs) {
        const d = e.data;
        const y = d.y?.[o0?.name];
        const prop = byReq[d.request_id];
        const pr = prop ? predicted(prop.cand, o0?.name) : null;
        const href = d.result_id ? `/ui/results/${d.result_id}` : `/ui/requests/${d.request_id}`;
        if (Number.isFinite(y)) observed.push({ x: d.step ?? e.seq, y, href, src: srcOf(e), n: observed.length + 1, title: `step ${d.step}: ${fmt(y)}${unit} (${d.capability || ""}, ${srcOf(e) === "measured" ? "measured" : "model prediction"})` });
        if (pr && Number.isFinite(y)) parity.push({ x: pr.mean, xerr: pr.std, y, href, title: `predicted ${fmt(pr.mean)} ± ${fmt(pr.std)}, observed ${fmt(y)}` });
      }
      for (const [rid, { cand, step }] of Object.entries(byReq)) {
        const pr = predicted(cand, o0?.name);
        if (pr) predictedPts.push({ x: step, y: pr.mean, yerr: pr.std, href: `/ui/requests/${rid}`, title: `proposed at step ${step}: ${fmt(pr.mean)} ± ${fmt(pr.std)}${unit}` });
      }

      // Pareto front over two objectives
      let pareto = "";
      if (objs.length >= 2) {
        const [i, j] = pair;
        const oi = objs[i], oj = objs[j];
        const pts = obs.filter((e) => !e.data.failed && Number.isFinite(e.data.y?.[oi.name]) && Number.isFinite(e.data.y?.[oj.name]));
        const vals = pts.map((e) => [e.data.y[oi.name], e.data.y[oj.name]]);
        const dirs = [oi, oj].map((o) => (o.direction === "minimize" ? -1 : 1));
        const mask = paretoMask(vals, dirs);
        const front = vals.map((v, k) => ({ x: v[0], y: v[1], k })).filter((p) => mask[p.k]).sort((a, b) => a.x - b.x);
        const sel = objs.length > 2 ? `<div class="row"><label>objectives</label><select id="pair">${objs.flatMap((a, ia) => objs.map((b, ib) => (ib > ia ? `<option value="${ia},${ib}" ${ia === i && ib === j ? "selected" : ""}>${esc(a.name)} vs ${esc(b.name)}</option>` : ""))).join("")}</select></div>` : "";
        pareto = `<div class="panel" id="pareto-panel">${sel}${chart({
          title: `Pareto front (${front.length} of ${vals.length} non-dominated)`,
          xLabel: `${oi.name} (${oi.direction || "maximize"})${oi.unit ? ` [${oi.unit}]` : ""}`,
          yLabel: `${oj.name} (${oj.direction || "maximize"})${oj.unit ? ` [${oj.unit}]` : ""}`,
          series: [
            { name: "observed", points: vals.map((v, k) => ({ x: v[0], y: v[1], href: pts[k].data.result_id ? `/ui/results/${pts[k].data.result_id}` : undefined })), hollow: true },
            { name: "Pareto front", points: front, line: true, marker: true },
          ],
        })}${s.pareto ? `<div class="chart-note">the planner's front: ${s.pareto.length} points</div>` : ""}</div>`;
      }

      // the model's prediction and uncertainty over two variables
      let model = `<div class="panel" id="model-panel"><h2>Model</h2><p class="muted">No model state with a prediction grid yet.</p></div>`;
      if (models.length) {
        const m = models.find((e) => e.seq === modelStep) || models[models.length - 1];
        const g = m.data.grid;
        let [va, vb] = g.variables || ["a", "b"];
        let z = g.mean, zs = g.std;
        const a = g.a || g[va], b = g.b || g[vb];
        // mean[i][j] is at (a[i], b[j]); accept the transposed layout too
        const tr = (M) => M[0].map((_, j) => M.map((r) => r[j]));
        if (z.length !== a.length && z.length === b.length) { z = tr(z); zs = zs && tr(zs); }
        const pts = obs.filter((e) => Number.isFinite(e.data.x?.[va]) && Number.isFinite(e.data.x?.[vb])).map((e) => ({ x: e.data.x[va], y: e.data.x[vb], title: `observed ${fmt(e.data.y?.[o0?.name])}` }));
        const fixed = Object.entries(g.fixed || {}).map(([k, v]) => `${esc(k)} = ${esc(fmt(v))}`).join(", ");
        model = `<div class="panel" id="model-panel"><div class="row"><h2 style="margin:0">Model: ${esc(m.data.model || "")}</h2>
          <label>state</label><select id="model-step">${models.map((e) => `<option value="${e.seq}" ${e === m ? "selected" : ""}>step ${esc(e.data.step ?? e.seq)} · n = ${esc(e.data.n_train ?? "?")}</option>`).join("")}</select></div>
          <div class="grid2">${heatmap({ title: `prediction of ${o0?.name || "objective"}`, xs: a, ys: b, z, xLabel: va, yLabel: vb, zLabel: `mean${unit}`, points: pts })}
          ${zs ? heatmap({ title: "uncertainty (standard deviation)", xs: a, ys: b, z: zs, xLabel: va, yLabel: vb, zLabel: `std${unit}`, points: pts }) : ""}</div>
          <div class="chart-note">${fixed ? `other variables fixed: ${fixed}` : ""} · circles: observations</div></div>`;
      }

      const tiers = Array.isArray(s.tiers) && s.tiers.length
        ? `<div class="panel" id="funnel-panel">${bars({ title: "Funnel tiers (passed of those in)", items: s.tiers.map((t) => ({ label: t.name, total: t.n_in || 0, part: t.n_passed || 0, note: `${t.n_passed ?? 0} / ${t.n_in ?? 0} passed · ${t.capability || ""}${t.threshold !== undefined ? ` · threshold ${fmt(t.threshold)}` : ""}` })) })}</div>`
        : `<div class="panel" id="funnel-panel"><h2>Funnel</h2><p class="muted">This campaign has no funnel tiers.</p></div>`;

      const queue = reqs.filter((r) => r.status === "pending" || r.status === "claimed");
      const queueHtml = `<div class="panel" id="queue-panel"><h2>Live queue <span class="muted">(${queue.length} pending or claimed of ${reqs.length})</span></h2>
        ${queue.length ? `<div class="scroll"><table id="queue"><thead><tr><th>request</th><th>capability</th><th>status</th><th>tenant</th><th>for</th><th>lease</th><th>progress</th></tr></thead><tbody>
        ${queue.map((r) => {
          const p = r.status_info?.progress;
          return `<tr><td><a class="mono" href="/ui/requests/${r.id}" data-link>${short(r.id)}</a></td><td>${esc(r.quantity)}/${esc(r.claimed_method || r.methods.join("|"))}</td><td>${badge(r.status)}</td><td>${r.claimed_by ? esc(tn[r.claimed_by]?.name || short(r.claimed_by)) : "–"}</td><td>${r.status === "claimed" ? duration(r.updated_at) : `waiting ${duration(r.created_at)}`}</td><td>${r.lease_expires_at ? ago(r.lease_expires_at) : "–"}</td><td>${p ? progressBar(p.fraction ?? 0, 1, `${p.fraction !== null && p.fraction !== undefined ? Math.round(100 * p.fraction) + " %" : ""} ${p.message || ""}`) : "–"}</td></tr>`;
        }).join("")}</tbody></table></div>` : `<p class="queue-empty">Nothing waiting.</p>`}</div>`;

      const bestObs = s.best?.result_id ? obs.find((e) => e.data.result_id === s.best.result_id) : null;
      const bestSrc = bestObs ? (srcOf(bestObs) === "measured" ? " <span class=\"badge measured\">measured</span>" : " <span class=\"badge model\">model prediction</span>") : "";
      const best = s.best?.y ? Object.entries(s.best.y).map(([k, v]) => `${esc(k)} = <b>${fmt(v)}</b>${o0 && k === o0.name && o0.unit ? ` ${esc(o0.unit)}` : ""}`).join(", ") + bestSrc : "–";
      const bestX = s.best?.x ? Object.entries(s.best.x).map(([k, v]) => `${esc(k)} = ${esc(fmt(v))}`).join(", ") : "";
      el.innerHTML = `<h1>${esc(camp.name)} ${badge(camp.status)}${access(camp)}</h1>
      <div class="panel">${controls(user)}</div>
      <div class="grid3">
        <div class="panel" id="summary-panel"><h2>Summary</h2><div class="kv">
          <span>owner</span><span>${esc(camp.owner)}</span>
          <span>planner</span><span>${camp.tenant_id ? esc(tn[camp.tenant_id]?.name || short(camp.tenant_id)) : "–"}</span>
          <span>strategy</span><span>${esc(s.strategy || camp.spec?.strategy?.name || "–")}</span>
          <span>step</span><span id="step">${esc(s.step ?? "–")}</span>
          <span>objectives</span><span>${objs.map((o) => `${esc(o.name)} (${esc(o.direction || "maximize")}${o.unit ? `, ${esc(o.unit)}` : ""})`).join(", ") || "–"}</span>
          <span>best</span><span id="best">${best}${s.best?.result_id ? ` · <a href="/ui/results/${s.best.result_id}" data-link>result</a>` : ""}<br><span class="muted">${bestX}</span></span>
          <span>events</span><span id="n-events">${events.length}</span>
          <span>started</span><span>${when(camp.created_at)}</span>
        </div></div>
        <div class="panel"><h2>Budget</h2><div class="kv">
          <span>requests</span><span>${budget.requests ? progressBar((s.n_results || 0) + (s.n_failed || 0), budget.requests) : esc(s.n_requests ?? reqs.length)}</span>
          <span>cost</span><span>${budget.cost ? progressBar(s.cost_spent || 0, budget.cost) : esc(fmt(s.cost_spent ?? 0))}</span>
          <span>results</span><span id="n-results">${esc(s.n_results ?? obs.filter((e) => !e.data.failed).length)}</span>
          <span>failed</span><span>${esc(s.n_failed ?? obs.filter((e) => e.data.failed).length)}</span>
          <span>pending</span><span>${esc(s.n_pending ?? queue.length)}</span>
          ${budget.wall_seconds ? `<span>wall time</span><span>${progressBar(Math.min(budget.wall_seconds, (Date.now() - new Date(camp.created_at).getTime()) / 1000), budget.wall_seconds, `${duration(camp.created_at)} of ${budget.wall_seconds} s`)}</span>` : ""}
        </div></div>
        ${queueHtml}
      </div>
      <div class="grid2" style="margin-top:14px">
        <div class="panel" id="best-panel">${chart({ title: "Best so far against requests", xLabel: "requests answered", yLabel: `best ${o0?.name || ""}${unit}`, legend: true, series: [{ name: "best measured", points: bsfMeasured.map((p) => ({ x: p.n, y: p.value })), line: true, marker: true, cls: "s0" }, { name: "best model prediction", points: bsfModel.map((p) => ({ x: p.n, y: p.value })), line: true, dash: true, cls: "s1" }, { name: "measured", points: observed.filter((p) => p.src === "measured").map((p) => ({ ...p, x: p.n })), cls: "s0" }, { name: "model prediction", points: observed.filter((p) => p.src !== "measured").map((p) => ({ ...p, x: p.n })), hollow: true, cls: "s1" }] })}<div class="chart-note">filled: measured; hollow and dashed: the model's predictions</div></div>
        <div class="panel" id="cost-panel">${chart({ title: "Best so far against cost", xLabel: "cost spent", yLabel: `best ${o0?.name || ""}${unit}`, legend: true, series: [{ name: "best measured", points: bsfMeasured.map((p) => ({ x: p.cost, y: p.value })), line: true, marker: true, cls: "s0" }, { name: "best model prediction", points: bsfModel.map((p) => ({ x: p.cost, y: p.value })), line: true, dash: true, cls: "s1" }] })}</div>
        <div class="panel" id="proposals-panel">${chart({ title: "Proposals against results", xLabel: "step", yLabel: `${o0?.name || ""}${unit}`, series: [{ name: "predicted ± std (proposal)", points: predictedPts, hollow: true }, { name: "measured", points: observed.filter((p) => p.src === "measured") }, { name: "model prediction", points: observed.filter((p) => p.src !== "measured"), hollow: true }] })}</div>
        <div class="panel" id="parity-panel">${chart({ title: "Predicted against observed", xLabel: `predicted${unit}`, yLabel: `observed${unit}`, diagonal: true, series: [{ name: "result", points: parity }], emptyText: "no proposal with a prediction has a result yet" })}</div>
        ${pareto}
      </div>
      <div style="margin-top:14px">${model}</div>
      ${tiers}
      <div class="panel" id="events-panel"><h2>Steps <span class="muted">(newest first)</span></h2><div class="scroll"><table id="events"><thead><tr><th class="num">seq</th><th>kind</th><th>step</th><th>what</th><th>when</th></tr></thead><tbody>
        ${events.slice(-200).reverse().map((e) => `<tr data-seq="${e.seq}"><td class="num">${e.seq}</td><td>${badge(e.kind)}</td><td>${esc(e.data.step ?? "")}</td><td>${eventText(e, o0)}</td><td>${when(e.created_at)}</td></tr>`).join("")}
      </tbody></table></div></div>
      ${decisions.length ? "" : ""}
      <details class="panel"><summary>Campaign specification</summary>${json(camp.spec)}</details>`;

      el.querySelectorAll("[data-control]").forEach((b) => b.addEventListener("click", async () => {
        const control = b.dataset.control;
        if (control === "stop" && !confirm("Stop this campaign? The planner finishes and will not resume.")) return;
        el.querySelector("#control-error").textContent = "";
        try {
          camp = await call("PATCH", `campaigns/${id}`, { json: { control, message: "from the dashboard" } });
          redraw();
        } catch (e) { el.querySelector("#control-error").textContent = e.message; }
      }));
      el.querySelector("#model-step")?.addEventListener("change", (ev) => { modelStep = Number(ev.target.value); redraw(); });
      el.querySelector("#pair")?.addEventListener("change", (ev) => { pair = ev.target.value.split(",").map(Number); redraw(); });
    }

    let tnCache = {}, userCache = null;
    const redraw = () => draw(tnCache, userCache);
    const refresh = debounce(async () => { tnCache = await fetchAll(); redraw(); }, 150);
    return {
      async render(e) {
        el = e;
        [tnCache, userCache] = await Promise.all([fetchAll(), me()]);
        redraw();
        this.timer = setInterval(() => { if (reqs.some((r) => r.status === "claimed")) redraw(); }, 5000);
      },
      onChange(msg) {
        if (msg.campaigns?.includes(id) || msg.topics.includes("requests") || msg.topics.includes("tenants")) refresh();
      },
      dispose() { clearInterval(this.timer); },
    };
  },
};

function eventText(e, o0) {
  const d = e.data || {};
  switch (e.kind) {
    case "proposal":
      return `${esc(d.strategy || "")}: ${(d.candidates || []).length} candidate(s) ${(d.candidates || []).slice(0, 3).map((c) => `<a href="/ui/requests/${c.request_id}" data-link>${esc(c.capability || "")}</a>`).join(", ")}`;
    case "observation":
      return d.failed ? `<span class="error">failed</span> ${esc(d.message || "")}` : `${esc(d.capability || "")}: ${Object.entries(d.y || {}).map(([k, v]) => `${esc(k)} = ${fmt(v)}`).join(", ")} ${d.result_id ? `<a href="/ui/results/${d.result_id}" data-link>result</a>` : ""}`;
    case "model_state":
      return `${esc(d.model || "")} on ${esc(d.n_train ?? "?")} results${d.grid ? " (with a prediction grid)" : ""}`;
    case "decision":
      return `${esc(d.kind || "")}: ${esc(d.reason || "")}`;
    case "stop":
      return `stopped: ${esc(d.reason || "")}`;
    default:
      return `<span class="muted">${esc(JSON.stringify(d).slice(0, 160))}</span>`;
  }
}

// A result's data drawn for people. Each renderer looks at the data's shape (and the raw files
// attached): cycling traces and cycler files (voltage against capacity per cycle, capacity
// fade), impedance spectra (Nyquist), conductivity (against composition and temperature),
// structures (CIF) and molecules (SMILES via RDKit on the server, XYZ geometries).
import { call, get, getAll } from "./api.js";
import { chart, esc, fmt } from "./plot.js";
import { drawStructure, parseCIF, parseXYZ } from "./struct.js";
import { chemicalName, sourceOf } from "./util.js";

const MAX_FILE = 8 * 1024 * 1024;
const isNum = (v) => typeof v === "number" && Number.isFinite(v);

// ---------------------------------------------------------------- file formats

// EC-Lab text export (.mpt): "Nb header lines : N", the column names on line N.
export function parseMPT(text) {
  const lines = text.split(/\r?\n/);
  const m = /Nb header lines\s*:\s*(\d+)/.exec(lines.slice(0, 5).join("\n"));
  const n = m ? parseInt(m[1], 10) : 1;
  const head = lines[n - 1].split("\t").map((s) => s.trim());
  const rows = lines.slice(n).filter((l) => l.trim()).map((l) => l.split("\t").map((x) => parseFloat(x.replace(",", "."))));
  const col = (name) => head.findIndex((h) => h === name);
  return { head, rows, col };
}

export function nyquistFromMPT(text) {
  const { rows, col } = parseMPT(text);
  const f = col("freq/Hz"), re = col("Re(Z)/Ohm"), im = col("-Im(Z)/Ohm");
  if (f < 0 || re < 0 || im < 0) return null;
  return rows.map((r) => ({ x: r[re], y: r[im], title: `${fmt(r[f])} Hz: Z' = ${fmt(r[re])} Ω, −Z'' = ${fmt(r[im])} Ω` }));
}

// Maccor text export: a header row starting "Rec#", then Cyc#, Amp-hr (per step), Volts, State.
export function parseMaccor(text) {
  const lines = text.split(/\r?\n/);
  const h = lines.findIndex((l) => l.startsWith("Rec#"));
  if (h < 0) return null;
  const head = lines[h].split("\t").map((s) => s.trim());
  const ic = head.indexOf("Cyc#"), iq = head.indexOf("Amp-hr"), iv = head.indexOf("Volts"), is = head.indexOf("State"), ist = head.indexOf("Step");
  if ([ic, iq, iv, is].some((i) => i < 0)) return null;
  const cycles = new Map();
  let lastKey = null, seg = null;
  for (const l of lines.slice(h + 1)) {
    if (!l.trim()) continue;
    const f = l.split("\t");
    const st = f[is].trim();
    if (st !== "C" && st !== "D") { lastKey = null; continue; }
    const cyc = parseInt(f[ic], 10), step = ist >= 0 ? f[ist] : "";
    const key = `${cyc}:${step}:${st}`;
    if (!cycles.has(cyc)) cycles.set(cyc, { C: [], D: [] });
    if (key !== lastKey) { seg = []; cycles.get(cyc)[st].push(seg); lastKey = key; }
    seg.push({ x: parseFloat(f[iq]), y: parseFloat(f[iv]) });
  }
  return cycles;
}

// ---------------------------------------------------------------- helpers

function walk(obj, fn, path = []) {
  if (obj && typeof obj === "object") {
    fn(obj, path);
    for (const [k, v] of Object.entries(obj)) walk(v, fn, [...path, k]);
  }
}

function find(obj, pred) {
  const out = [];
  walk(obj, (o, p) => { if (pred(o, p)) out.push({ o, p }); });
  return out;
}

function pickCycles(keys, n = 6) {
  if (keys.length <= n) return keys;
  const out = new Set([keys[0], keys[keys.length - 1]]);
  for (let k = 1; out.size < n && k < n; k++) out.add(keys[Math.round((k * (keys.length - 1)) / (n - 1))]);
  return [...out].sort((a, b) => a - b);
}

// capacity [A h] along a trace from current [A] (discharge positive) and time [s]
function traceCurves(tr, name) {
  const out = [];
  let seg = null, sign = 0, q = 0;
  for (let k = 0; k < tr.time.length; k++) {
    const i = tr.current[k];
    const s = Math.abs(i) < 1e-9 ? 0 : Math.sign(i);
    if (k > 0) q += (Math.abs(i + tr.current[k - 1]) / 2) * (tr.time[k] - tr.time[k - 1]) / 3600;
    if (s !== sign) { q = 0; sign = s; seg = s ? { name: `${name} · ${s > 0 ? "discharge" : "charge"}`, points: [], line: true } : null; if (seg) out.push(seg); }
    if (seg) seg.points.push({ x: q, y: tr.voltage[k] });
  }
  return out;
}

function section(title, body, id) { return `<div class="panel" ${id ? `id="${id}"` : ""}><h2>${esc(title)}</h2>${body}</div>`; }

// ---------------------------------------------------------------- renderers

async function cycling(res, files, out) {
  const d = res.data;
  const charts = [];
  if (d.traces && typeof d.traces === "object") {
    const series = Object.entries(d.traces).flatMap(([name, tr]) => (tr?.time ? traceCurves(tr, `cycle ${name}`) : []));
    if (series.length) charts.push(chart({ title: "Voltage against capacity per cycle", xLabel: "capacity [A h]", yLabel: "voltage [V]", series }));
  }
  const fade = Array.isArray(d.discharge_capacity) ? d.discharge_capacity
    : Array.isArray(d.figures_of_merit?.discharge_capacity_Ah) ? d.figures_of_merit.discharge_capacity_Ah
    : Array.isArray(d.capacity_list) ? d.capacity_list.filter((_, k) => k % 2 === 1) : null;
  const cycleNo = Array.isArray(d.figures_of_merit?.cycles) && d.figures_of_merit.discharge_capacity_Ah === fade ? d.figures_of_merit.cycles : null;
  for (const f of files.filter((f) => /\.(txt|csv)$/i.test(f.name) && f.size < MAX_FILE)) {
    const text = await (await call("GET", `files/${f.id}`, { raw: true })).text();
    const cyc = parseMaccor(text);
    if (!cyc || !cyc.size) continue;
    const keys = pickCycles([...cyc.keys()].sort((a, b) => a - b));
    const series = keys.flatMap((c) => ["D", "C"].flatMap((st) => cyc.get(c)[st].filter((s) => s.length > 1).map((s) => ({ name: `cycle ${c} ${st === "D" ? "discharge" : "charge"}`, points: s, line: true, dash: st === "C" }))));
    charts.push(chart({ title: `Voltage against capacity per cycle (${f.name})`, xLabel: "capacity [A h]", yLabel: "voltage [V]", series }));
    if (!fade) {
      const qd = [...cyc.keys()].sort((a, b) => a - b).map((c) => ({ x: c, y: Math.max(0, ...cyc.get(c).D.flat().map((p) => p.x)) })).filter((p) => p.y > 0);
      charts.push(chart({ title: "Capacity fade", xLabel: "cycle", yLabel: "discharge capacity [A h]", series: [{ name: "discharge capacity", points: qd, line: true, marker: true }] }));
    }
  }
  if (fade) {
    const pts = fade.map((v, k) => ({ x: cycleNo ? cycleNo[k] : k + 1, y: v })).filter((p) => isNum(p.y));
    const series = [{ name: "discharge capacity", points: pts, line: true, marker: true }];
    charts.push(chart({ title: `Capacity fade${d.eol_cycle ? ` (end of life at cycle ${d.eol_cycle})` : ""}`, xLabel: "cycle", yLabel: "discharge capacity [A h]", series }));
  }
  if (Array.isArray(d.capacity_retention)) charts.push(chart({ title: "Capacity retention", xLabel: "cycle", yLabel: "retention", series: [{ name: "retention", points: d.capacity_retention.map((v, k) => ({ x: k + 1, y: v })), line: true, marker: true }] }));
  if (!charts.length) return false;
  out.push(section("Cycling", `<div class="grid2" id="cycling">${charts.join("")}</div>`, "render-cycling"));
  return true;
}

async function impedance(res, files, out) {
  const series = [];
  for (const f of files.filter((f) => /\.mpt$/i.test(f.name) && f.size < MAX_FILE)) {
    const text = await (await call("GET", `files/${f.id}`, { raw: true })).text();
    const pts = nyquistFromMPT(text);
    if (pts?.length) series.push({ name: f.name, points: pts, line: true, marker: true, r: 2.5 });
  }
  // spectra given in the data: {frequency|freq, real|Z_real|z_real, imag|Z_imag|-Im} arrays
  for (const { o, p } of find(res.data, (o) => Array.isArray(o.frequency || o.freq) && Array.isArray(o.real || o.z_real || o.Z_real))) {
    const re = o.real || o.z_real || o.Z_real, im = o.imag || o.z_imag || o.Z_imag || [];
    series.push({ name: p.join(".") || "spectrum", points: re.map((r, k) => ({ x: r, y: -im[k] })), line: true, marker: true, r: 2.5 });
  }
  if (!series.length) return false;
  out.push(section("Impedance", chart({ title: "Nyquist plot", xLabel: "Z′ [Ω]", yLabel: "−Z″ [Ω]", equal: true, series, height: 340 }), "render-nyquist"));
  return true;
}

// mole fraction of the salt (the component whose SMILES has Li+) and the temperature
function conductivityPoint(r) {
  const c = r.data?.conductivity;
  if (!c) return null;
  const vals = (c.values || []).filter(isNum);
  if (!vals.length) return null;
  const mean = isNum(c.mean) ? c.mean : vals.reduce((a, b) => a + b, 0) / vals.length;
  const unc = Array.isArray(c.uncertainty) ? c.uncertainty.find(isNum) : isNum(c.uncertainty) ? c.uncertainty : 0;
  const T = Array.isArray(c.temperature) ? c.temperature.find(isNum) : c.temperature;
  const form = r.data?.run_info?.formulation || r.parameters?.formulation || [];
  const info = r.data?.run_info?.chemicals_info || {};
  const salt = form.find((x) => /Li\+|\[Li/.test(x.chemical?.SMILES || ""));
  return { value: mean, unc: unc || 0, T, xSalt: salt ? salt.fraction : null, form, info };
}

async function conductivity(res, files, out) {
  const me = conductivityPoint(res);
  if (!me) return false;
  const others = await get("results", { quantity: res.quantity, limit: 1000, newest_first: true });
  const pts = others.map((r) => ({ r, p: conductivityPoint(r) })).filter((x) => x.p);
  // one series per temperature; in 10 K bins when there are many temperatures
  const exact = new Set(pts.map((x) => Math.round(x.p.T))).size <= 6;
  const bin = (T) => (exact ? Math.round(T) : 10 * Math.floor(T / 10));
  const temps = [...new Set(pts.map((x) => bin(x.p.T)))].sort((a, b) => a - b);
  const tenants = await getAll("tenants");
  const kinds = Object.fromEntries(tenants.map((t) => [t.id, t]));
  const src = (r) => sourceOf(r, kinds[r.tenant_id]).kind === "measured" ? "measured" : "model";
  // one series per temperature and source: measurements filled, model predictions hollow
  const byT = temps.flatMap((T) => ["measured", "model"].map((sk) => ({ name: `${exact ? `${T} K` : `${T}–${T + 10} K`} ${sk === "measured" ? "measured" : "model"}`, hollow: sk === "model", points: pts.filter((x) => bin(x.p.T) === T && isNum(x.p.xSalt) && src(x.r) === sk).map(({ r, p }) => ({ x: p.xSalt, y: p.value, yerr: p.unc, href: `/ui/results/${r.id}`, hi: r.id === res.id, title: `${fmt(p.value)} ± ${fmt(p.unc)} S/m at ${fmt(p.T)} K, x(salt) = ${fmt(p.xSalt)} (${sk === "measured" ? "measured" : "model prediction"})` })) }))).filter((s) => s.points.length);
  const vsT = ["measured", "model"].map((sk) => ({ name: sk === "measured" ? "measured" : "model prediction", hollow: sk === "model", points: pts.filter((x) => src(x.r) === sk).map(({ r, p }) => ({ x: p.T, y: p.value, yerr: p.unc, href: `/ui/results/${r.id}`, hi: r.id === res.id, title: `${fmt(p.value)} S/m at ${fmt(p.T)} K` })) })).filter((s) => s.points.length);
  const comp = me.form.map((x) => { const n = chemicalName(x.chemical, me.info?.[x.chemical?.SMILES]); return `${n ? `<b>${esc(n)}</b> ` : ""}<span class="mono">${esc(x.chemical?.SMILES || "?")}</span>: ${fmt(x.fraction)}`; }).join(" · ");
  out.push(section("Conductivity", `<p><b id="conductivity-value">${fmt(me.value)} ± ${fmt(me.unc)} S/m</b> at ${fmt(me.T)} K <span class="muted">(${fmt(me.value * 10)} mS/cm)</span></p><p class="muted" id="composition">${comp} (fractions: ${esc(me.form[0]?.fraction_type || "")})</p>
    <div class="grid2">${chart({ title: "Conductivity against composition", xLabel: "salt mole fraction", yLabel: "conductivity [S/m]", series: byT, legend: true })}
    ${chart({ title: "Conductivity against temperature", xLabel: "temperature [K]", yLabel: "conductivity [S/m]", series: vsT, legend: true })}</div>
    <p class="chart-note">${pts.length} ${esc(res.quantity)} results you may see; this one ringed.</p>`, "render-conductivity"));
  return true;
}

async function structures(res, files, out) {
  const items = [];
  for (const { o, p } of find(res.data, (o) => typeof o.cif === "string")) items.push({ title: o.formula || p.join("."), kind: "cif", text: o.cif });
  for (const { o, p } of find(res.data, (o) => typeof o.xyz === "string")) items.push({ title: p.join(".") || "geometry", kind: "xyz", text: o.xyz });
  if (!items.length) {
    for (const f of files.filter((f) => /\.(cif|xyz)$/i.test(f.name) && f.size < MAX_FILE).slice(0, 6)) {
      items.push({ title: f.name, kind: f.name.toLowerCase().endsWith(".cif") ? "cif" : "xyz", file: f });
    }
  }
  const smiles = typeof res.data.smiles === "string" ? res.data.smiles : null;
  if (!items.length && !smiles) return false;
  const boxes = items.slice(0, 6).map((_, k) => `<div class="struct" id="struct-${k}"></div>`).join("");
  out.push(section(smiles ? "Molecule" : "Structure", `<div class="grid3">${smiles ? `<div class="mol-svg" id="depiction"><p class="muted">drawing ${esc(smiles)}…</p></div>` : ""}${boxes}</div>`, "render-structure"));
  return async (root) => {
    if (smiles) {
      const box = root.querySelector("#depiction");
      try {
        const dark = matchMedia("(prefers-color-scheme: dark)").matches;
        const resp = await call("GET", "depict/molecule.svg", { params: { smiles, dark }, raw: true });
        box.innerHTML = (await resp.text()).replace(/<\?xml[^>]*>/, "") + `<div class="chart-note">${esc(smiles)} (RDKit)</div>`;
      } catch (e) { box.innerHTML = `<p class="muted">${esc(smiles)}</p><p class="error">${esc(e.message)}</p>`; }
    }
    for (const [k, it] of items.slice(0, 6).entries()) {
      const box = root.querySelector(`#struct-${k}`);
      try {
        const text = it.text ?? (await (await call("GET", `files/${it.file.id}`, { raw: true })).text());
        drawStructure(box, it.kind === "cif" ? parseCIF(text) : parseXYZ(text), { title: it.title });
      } catch (e) { box.innerHTML = `<p class="error">${esc(it.title)}: ${esc(e.message)}</p>`; }
    }
  };
}

async function profile(res, files, out) {
  const hits = find(res.data, (o) => Array.isArray(o) && o.length > 2 && o.every((p) => p && isNum(p.reaction_coordinate) && isNum(p.energy)));
  if (!hits.length) return false;
  out.push(section("Energy profile", chart({ title: "Energy along the path", xLabel: "reaction coordinate [Å]", yLabel: "energy [eV]", series: hits.map(({ o, p }) => ({ name: p.join("."), points: o.map((q) => ({ x: q.reaction_coordinate, y: q.energy })), line: true, marker: true })) }), "render-profile"));
  return true;
}

// the unit the result schema gives a path ("unit", or "Unit: ..." in the description)
export function schemaUnit(schema, path) {
  if (!schema) return "";
  const resolve = (n, depth = 0) => {
    if (!n || typeof n !== "object" || depth > 20) return n;
    if (typeof n.$ref === "string" && n.$ref.startsWith("#/")) {
      let t = schema;
      for (const part of n.$ref.slice(2).split("/")) t = t?.[part];
      return resolve({ ...t, ...Object.fromEntries(Object.entries(n).filter(([k]) => k !== "$ref")) }, depth + 1);
    }
    for (const key of ["allOf", "anyOf", "oneOf"]) {
      const sub = (n[key] || []).map((x) => resolve(x, depth + 1)).find((x) => x && x.type !== "null");
      if (sub) return { ...sub, ...Object.fromEntries(Object.entries(n).filter(([k]) => k !== key)) };
    }
    return n;
  };
  let node = resolve(schema);
  for (const part of path) {
    if (!node) return "";
    node = /^\d+$/.test(part) ? resolve(node.items) : resolve(node.properties?.[part] ?? (typeof node.additionalProperties === "object" ? node.additionalProperties : undefined));
  }
  if (!node) return "";
  if (typeof node.unit === "string") return node.unit;
  const m = /Unit:\s*([^.;,\n]+)/.exec(node.description || "");
  return m ? m[1].trim() : "";
}

// every scalar of the data in a table, with the unit of the capability where it has one
function scalars(res, units, schema) {
  const rows = [];
  const go = (v, path) => {
    if (rows.length > 200) return;
    if (isNum(v) || typeof v === "boolean" || (typeof v === "string" && v.length < 120 && !/\n/.test(v))) rows.push([path.join("."), v]);
    else if (Array.isArray(v) && v.length && v.length <= 6 && v.every(isNum)) rows.push([path.join("."), v.map((x) => fmt(x)).join(", ")]);
    else if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) go(x, [...path, k]);
  };
  go(res.data, []);
  if (!rows.length) return "";
  return section("Values", `<div class="scroll"><table id="values"><tbody>${rows.map(([k, v]) => `<tr><td class="mono">${esc(k)}</td><td>${esc(isNum(v) ? fmt(v, 6) : v)} <span class="unit">${esc(units[k] || units[k.split(".").pop()] || schemaUnit(schema, k.split(".")) || "")}</span></td></tr>`).join("")}</tbody></table></div>`);
}

// Fill `el` with every view that fits the result; returns the names of the views drawn.
export async function renderResult(el, res, capability) {
  const files = res.files || [];
  const out = [];
  const drawn = [];
  const later = [];
  for (const [name, fn] of [["cycling", cycling], ["impedance", impedance], ["conductivity", conductivity], ["structure", structures], ["profile", profile]]) {
    try {
      const r = await fn(res, files, out);
      if (r) { drawn.push(name); if (typeof r === "function") later.push(r); }
    } catch (e) {
      out.push(section(name, `<p class="error">could not draw: ${esc(e.message)}</p>`));
    }
  }
  out.push(scalars(res, capability?.units || {}, capability?.result_schema));
  el.innerHTML = out.join("");
  el.dataset.views = drawn.join(" ");
  for (const fn of later) await fn(el);
  return drawn;
}

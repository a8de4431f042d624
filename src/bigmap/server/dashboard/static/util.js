// Small helpers shared by the pages.
import { esc, fmt } from "./plot.js";

export const short = (id) => (id ? String(id).slice(0, 8) : "–");
export const badge = (s, extra = "") => `<span class="badge ${esc(s)}">${esc(s)}${extra}</span>`;

export function ago(iso) {
  if (!iso) return "–";
  const t = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z").getTime();
  const s = Math.round((Date.now() - t) / 1000);
  const a = Math.abs(s);
  const txt = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${(a / 3600).toFixed(1)} h` : `${(a / 86400).toFixed(1)} d`;
  return s >= 0 ? `${txt} ago` : `in ${txt}`;
}

export function duration(fromIso, toIso) {
  if (!fromIso) return "–";
  const p = (x) => new Date(/[zZ]|[+-]\d\d:\d\d$/.test(x) ? x : x + "Z").getTime();
  const s = Math.max(0, Math.round(((toIso ? p(toIso) : Date.now()) - p(fromIso)) / 1000));
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${(s / 3600).toFixed(1)} h`;
}

export const when = (iso) => (iso ? `<span title="${esc(iso)}">${esc(ago(iso))}</span>` : "–");

export function progressBar(part, total, label) {
  const f = total > 0 ? Math.min(1, part / total) : 0;
  return `<div class="row" style="gap:6px"><div class="progress" style="width:120px" title="${esc(label || `${part} / ${total}`)}"><span style="width:${(100 * f).toFixed(1)}%"></span></div><span class="muted">${esc(label ?? `${fmt(part)} / ${fmt(total)}`)}</span></div>`;
}

export function json(v) { return `<pre class="json">${esc(JSON.stringify(v, null, 2))}</pre>`; }

export function debounce(fn, ms = 250) {
  let t = null, running = false, again = false;
  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    try { await fn(); } catch (e) { console.error(e); } finally {
      running = false;
      if (again) { again = false; t = setTimeout(run, ms); }
    }
  };
  return () => { clearTimeout(t); t = setTimeout(run, ms); };
}

export function access(o) {
  if (!o || !o.access || o.access === "public") return "";
  return " " + badge(o.access, o.access_groups?.length ? `: ${o.access_groups.join(", ")}` : "");
}

export function capOf(r) { return `${r.quantity}/${r.claimed_method || r.method || (r.methods || []).join("|")}`; }

// Where a number comes from, told apart in every plot and table: a measurement (real or
// emulated instrument) or a model's prediction (simulation, data-driven model), from the
// result's provenance and the kind of tenant that made it.
export function sourceOf(res, tenant) {
  const p = res?.provenance || {};
  if (p.emulated || p.instrument?.emulated) return { kind: "measured", label: "measured (emulated instrument)" };
  const kind = tenant?.kind || p.tenant?.kind;
  if (kind === "instrument") return { kind: "measured", label: "measured" };
  if (kind === "simulation" || kind === "analysis") return { kind: "model", label: "model prediction" };
  return { kind: "unknown", label: "source unknown" };
}

// Names of common electrolyte chemicals by SMILES (the dashboard shows both)
const NAMES = {
  "[Li+].F[P-](F)(F)(F)(F)F": "LiPF6", "C1COC(=O)O1": "EC (ethylene carbonate)", "CC1COC(=O)O1": "PC (propylene carbonate)",
  "CCOC(=O)OC": "EMC (ethyl methyl carbonate)", "COC(=O)OC": "DMC (dimethyl carbonate)", "CCOC(=O)OCC": "DEC (diethyl carbonate)",
  "O=C1OCC(F)O1": "FEC (fluoroethylene carbonate)", "O=C1OC=CO1": "VC (vinylene carbonate)", "[Li+].[O-]Cl(=O)(=O)=O": "LiClO4",
  "[Li+].FC(F)(F)S(=O)(=O)[N-]S(=O)(=O)C(F)(F)F": "LiTFSI", "[Li+].F[B-](F)(F)F": "LiBF4",
};
export function chemicalName(chem, info) {
  return info?.name || chem?.name || NAMES[chem?.SMILES] || null;
}

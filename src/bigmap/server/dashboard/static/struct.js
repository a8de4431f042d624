// Structures and molecules as pictures: XYZ and CIF parsed here, drawn as ball-and-stick SVG
// (orthographic; drag to turn). Colours: Jmol's CPK scheme; covalent radii: B. Cordero et al.,
// "Covalent radii revisited", Dalton Trans. (2008) 2832-2838, doi:10.1039/B801115J.
import { esc } from "./plot.js";

const RADII = { H: 0.31, He: 0.28, Li: 1.28, Be: 0.96, B: 0.84, C: 0.76, N: 0.71, O: 0.66, F: 0.57, Na: 1.66, Mg: 1.41, Al: 1.21, Si: 1.11, P: 1.07, S: 1.05, Cl: 1.02, K: 2.03, Ca: 1.76, Ti: 1.6, V: 1.53, Cr: 1.39, Mn: 1.39, Fe: 1.32, Co: 1.26, Ni: 1.24, Cu: 1.32, Zn: 1.22, Ga: 1.22, Ge: 1.2, As: 1.19, Se: 1.2, Br: 1.2, Nb: 1.64, Mo: 1.54, Sn: 1.39, Sb: 1.39, I: 1.39, La: 2.07, W: 1.62, Zr: 1.75, Y: 1.9 };
const COLORS = { H: "#ffffff", Li: "#cc80ff", B: "#ffb5b5", C: "#909090", N: "#3050f8", O: "#ff0d0d", F: "#90e050", Na: "#ab5cf2", Mg: "#8aff00", Al: "#bfa6a6", Si: "#f0c8a0", P: "#ff8000", S: "#ffff30", Cl: "#1ff01f", K: "#8f40d4", Ca: "#3dff00", Ti: "#bfc2c7", V: "#a6a6ab", Cr: "#8a99c7", Mn: "#9c7ac7", Fe: "#e06633", Co: "#f090a0", Ni: "#50d050", Cu: "#c88033", Zn: "#7d80b0", Br: "#a62929", Zr: "#94e0e0", Nb: "#73c2c9", Mo: "#54b5b5", Sn: "#668080", I: "#940094", La: "#70d4ff", W: "#2194d6", Y: "#94ffff", Ge: "#668f8f", Ga: "#c28f8f", Se: "#ffa100", Sb: "#9e63b5", As: "#bd80e3" };

const element = (s) => { const m = /^([A-Z][a-z]?)/.exec(String(s).trim()); return m ? m[1] : "X"; };

export function parseXYZ(text) {
  const lines = String(text).trim().split(/\r?\n/);
  const n = parseInt(lines[0], 10);
  if (!Number.isFinite(n) || lines.length < n + 2) throw new Error("not an XYZ file");
  const atoms = [];
  for (let i = 2; i < 2 + n; i++) {
    const f = lines[i].trim().split(/\s+/);
    atoms.push({ el: element(f[0]), p: [+f[1], +f[2], +f[3]] });
  }
  return { atoms, comment: lines[1] || "" };
}

function cifNumber(s) { return parseFloat(String(s).replace(/\(\d+\)$/, "")); }

function tokens(line) {
  const out = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  let m;
  while ((m = re.exec(line))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

// "-x+1/2" -> [coefficients of x, y, z, constant]
function parseOp(expr) {
  const c = [0, 0, 0, 0];
  const s = expr.replace(/\s+/g, "").toLowerCase();
  const re = /([+-]?)(\d+(?:\.\d+)?(?:\/\d+(?:\.\d+)?)?)?\*?([xyz])?/g;
  let m;
  while ((m = re.exec(s)) && m[0] !== "") {
    const sign = m[1] === "-" ? -1 : 1;
    let num = 1;
    if (m[2]) { const [a, b] = m[2].split("/"); num = b ? +a / +b : +a; }
    if (m[3]) c["xyz".indexOf(m[3])] += sign * num;
    else c[3] += sign * num;
  }
  return c;
}

export function parseCIF(text) {
  const lines = String(text).split(/\r?\n/);
  const vals = {};
  const loops = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "loop_") {
      const heads = [];
      while (i + 1 < lines.length && lines[i + 1].trim().startsWith("_")) heads.push(lines[++i].trim().split(/\s+/)[0]);
      const rows = [];
      let buf = [];
      while (i + 1 < lines.length) {
        const nxt = lines[i + 1].trim();
        if (!nxt || nxt.startsWith("_") || nxt === "loop_" || nxt.startsWith("data_") || nxt.startsWith("#")) break;
        buf.push(...tokens(nxt));
        i++;
        while (buf.length >= heads.length) rows.push(buf.splice(0, heads.length));
      }
      loops.push({ heads, rows });
    } else if (line.startsWith("_")) {
      const t = tokens(line);
      vals[t[0]] = t[1];
    }
  }
  const cell = ["a", "b", "c"].map((k) => cifNumber(vals[`_cell_length_${k}`]));
  const ang = ["alpha", "beta", "gamma"].map((k) => (cifNumber(vals[`_cell_angle_${k}`]) * Math.PI) / 180);
  if (!cell.every(Number.isFinite) || !ang.every(Number.isFinite)) throw new Error("CIF without a cell");
  const [a, b, c] = cell, [al, be, ga] = ang;
  const cx = Math.cos(be), cy = (Math.cos(al) - Math.cos(be) * Math.cos(ga)) / Math.sin(ga);
  const M = [[a, 0, 0], [b * Math.cos(ga), b * Math.sin(ga), 0], [c * cx, c * cy, c * Math.sqrt(Math.max(0, 1 - cx * cx - cy * cy))]];
  const site = loops.find((l) => l.heads.includes("_atom_site_fract_x"));
  if (!site) throw new Error("CIF without atom sites");
  const col = (n) => site.heads.indexOf(n);
  const ie = col("_atom_site_type_symbol") >= 0 ? col("_atom_site_type_symbol") : col("_atom_site_label");
  const ix = col("_atom_site_fract_x"), iy = col("_atom_site_fract_y"), iz = col("_atom_site_fract_z");
  const symLoop = loops.find((l) => l.heads.some((h) => /_symmetry_equiv_pos_as_xyz|_space_group_symop_operation_xyz/.test(h)));
  let ops = [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]];
  if (symLoop) {
    const k = symLoop.heads.findIndex((h) => /_as_xyz|_operation_xyz/.test(h));
    ops = symLoop.rows.map((r) => r[k].split(",").map(parseOp));
  }
  const fracs = [];
  for (const r of site.rows) {
    const f = [cifNumber(r[ix]), cifNumber(r[iy]), cifNumber(r[iz])];
    for (const op of ops) {
      const g = op.map((q) => { let v = q[0] * f[0] + q[1] * f[1] + q[2] * f[2] + q[3]; v -= Math.floor(v + 1e-6); return v; });
      if (!fracs.some((o) => o.el === element(r[ie]) && o.f.every((v, j) => { const d = Math.abs(v - g[j]); return Math.min(d, 1 - d) < 1e-3; }))) fracs.push({ el: element(r[ie]), f: g });
    }
  }
  const atoms = fracs.map(({ el, f }) => ({ el, p: [0, 1, 2].map((j) => f[0] * M[0][j] + f[1] * M[1][j] + f[2] * M[2][j]) }));
  return { atoms, cell: M, name: Object.keys(vals).length ? (vals._chemical_formula_sum || "") : "" };
}

function bondsOf(atoms) {
  const out = [];
  if (atoms.length > 600) return out;
  for (let i = 0; i < atoms.length; i++) for (let j = i + 1; j < atoms.length; j++) {
    const a = atoms[i], b = atoms[j];
    const d = Math.hypot(a.p[0] - b.p[0], a.p[1] - b.p[1], a.p[2] - b.p[2]);
    const lim = ((RADII[a.el] || 1.5) + (RADII[b.el] || 1.5)) * 1.15;
    if (d > 0.4 && d < lim && !(a.el === "Li" || b.el === "Li") ) out.push([i, j]);
  }
  return out;
}

function rotate(p, yaw, pitch) {
  const [x, y, z] = p;
  const x1 = x * Math.cos(yaw) + z * Math.sin(yaw), z1 = -x * Math.sin(yaw) + z * Math.cos(yaw);
  const y2 = y * Math.cos(pitch) - z1 * Math.sin(pitch), z2 = y * Math.sin(pitch) + z1 * Math.cos(pitch);
  return [x1, y2, z2];
}

function svg(model, yaw, pitch, W, H) {
  const { atoms, cell } = model;
  const cen = [0, 1, 2].map((j) => atoms.reduce((s, a) => s + a.p[j], 0) / atoms.length);
  const pts = atoms.map((a) => rotate(a.p.map((v, j) => v - cen[j]), yaw, pitch));
  const corners = [];
  if (cell) {
    for (const i of [0, 1]) for (const j of [0, 1]) for (const k of [0, 1]) {
      corners.push(rotate([0, 1, 2].map((d) => i * cell[0][d] + j * cell[1][d] + k * cell[2][d] - cen[d]), yaw, pitch));
    }
  }
  const ext = [...pts, ...corners];
  const span = Math.max(1, ...ext.map((p) => Math.max(Math.abs(p[0]), Math.abs(p[1])))) + 1.2;
  const s = Math.min(W, H) / (2 * span);
  const X = (p) => W / 2 + p[0] * s, Y = (p) => H / 2 - p[1] * s;
  const parts = [];
  if (cell) {
    const E = [[0, 1], [0, 2], [0, 4], [1, 3], [1, 5], [2, 3], [2, 6], [3, 7], [4, 5], [4, 6], [5, 7], [6, 7]];
    for (const [a, b] of E) parts.push(`<line class="cell" x1="${X(corners[a]).toFixed(1)}" y1="${Y(corners[a]).toFixed(1)}" x2="${X(corners[b]).toFixed(1)}" y2="${Y(corners[b]).toFixed(1)}"/>`);
  }
  for (const [i, j] of model.bonds) parts.push(`<line class="bond" x1="${X(pts[i]).toFixed(1)}" y1="${Y(pts[i]).toFixed(1)}" x2="${X(pts[j]).toFixed(1)}" y2="${Y(pts[j]).toFixed(1)}"/>`);
  const order = pts.map((p, i) => i).sort((a, b) => pts[a][2] - pts[b][2]);
  for (const i of order) {
    const a = atoms[i], r = Math.max(2.5, (RADII[a.el] || 1.2) * 0.45 * s);
    parts.push(`<circle class="atom" cx="${X(pts[i]).toFixed(1)}" cy="${Y(pts[i]).toFixed(1)}" r="${r.toFixed(1)}" fill="${COLORS[a.el] || "#ff1493"}"><title>${esc(a.el)}</title></circle>`);
  }
  return parts.join("");
}

// Draw a parsed structure into `el` (drag with the mouse to turn it).
export function drawStructure(el, model, { width = 420, height = 320, title = "" } = {}) {
  model.bonds = model.bonds || bondsOf(model.atoms);
  let yaw = 0.6, pitch = 0.35;
  const counts = {};
  for (const a of model.atoms) counts[a.el] = (counts[a.el] || 0) + 1;
  const formula = Object.entries(counts).map(([k, v]) => `${k}${v > 1 ? v : ""}`).join(" ");
  el.innerHTML = `<svg class="chart structure" viewBox="0 0 ${width} ${height}" data-atoms="${model.atoms.length}" role="img" aria-label="${esc(title || formula)}" style="cursor:grab;max-width:${width}px"></svg><div class="chart-note">${esc(title)} ${esc(formula)} · ${model.atoms.length} atoms${model.cell ? " · unit cell dashed" : ""} · drag to turn</div>`;
  const root = el.querySelector("svg");
  const paint = () => { root.innerHTML = svg(model, yaw, pitch, width, height); };
  paint();
  let drag = null;
  root.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY]; root.setPointerCapture(e.pointerId); });
  root.addEventListener("pointermove", (e) => {
    if (!drag) return;
    yaw += (e.clientX - drag[0]) * 0.01; pitch += (e.clientY - drag[1]) * 0.01; drag = [e.clientX, e.clientY]; paint();
  });
  root.addEventListener("pointerup", () => { drag = null; });
}

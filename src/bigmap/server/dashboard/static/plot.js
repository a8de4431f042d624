// Small SVG charts drawn here (no library): line/scatter with error bars, heat maps with a
// colour bar, bars, and a layered graph. Colours come from CSS variables (light and dark).
export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

export function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(Math.max(1, digits - 2));
  return String(Number(v.toPrecision(digits)));
}

function niceStep(span, n) {
  const raw = span / Math.max(1, n);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

export function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const st = niceStep(hi - lo, n);
  const out = [];
  for (let v = Math.ceil(lo / st - 1e-9) * st; v <= hi + st * 1e-9; v += st) out.push(Math.abs(v) < st * 1e-9 ? 0 : v);
  return out;
}

// significant digits for tick labels so that neighbouring ticks never read the same
// (298.1, 298.2 ... rather than 298, 298 ...)
export function tickDigits(ts) {
  if (ts.length < 2) return 3;
  const step = Math.min(...ts.slice(1).map((t, i) => Math.abs(t - ts[i])).filter((d) => d > 0));
  const big = Math.max(...ts.map(Math.abs));
  if (!(step > 0) || !(big > 0)) return 3;
  return Math.min(10, Math.max(3, Math.ceil(Math.log10(big / step) + 1e-9) + 1));
}

function logTicks(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    const v = Math.pow(10, e);
    if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
  }
  return out.length >= 2 ? out : [lo, hi];
}

function extent(vals, log) {
  let v = vals.filter((x) => Number.isFinite(x) && (!log || x > 0));
  if (!v.length) return [0, 1];
  let lo = Math.min(...v), hi = Math.max(...v);
  if (lo === hi) { const d = log ? lo * 0.5 : Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  if (!log) { const pad = (hi - lo) * 0.05; lo -= pad; hi += pad; }
  return [lo, hi];
}

function scale(lo, hi, a, b, log) {
  if (log) { const L = Math.log10(lo), H = Math.log10(hi); return (v) => a + ((Math.log10(v) - L) / (H - L)) * (b - a); }
  return (v) => a + ((v - lo) / (hi - lo)) * (b - a);
}

const norm = (p) => (Array.isArray(p) ? { x: p[0], y: p[1] } : p);

// chart({title, xLabel, yLabel, series: [{name, points, line, marker, hollow, cls}], xLog, yLog,
//        equal (same scale on both axes, for Nyquist), diagonal (y = x, for parity plots)})
export function chart(o) {
  const W = o.width || 520, H = o.height || 300;
  const m = { l: 62, r: 14, t: o.title ? 26 : 10, b: 42 };
  const series = (o.series || []).map((s, i) => ({ ...s, cls: s.cls ?? `s${i % 8}`, points: (s.points || []).map(norm).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)) }));
  const all = series.flatMap((s) => s.points);
  if (!all.length) return empty(o, W, H);
  const xs = all.flatMap((p) => [p.x - (p.xerr || 0), p.x + (p.xerr || 0)]);
  const ys = all.flatMap((p) => [p.y - (p.yerr || 0), p.y + (p.yerr || 0)]);
  if (o.yZero) ys.push(0);
  let [x0, x1] = o.xRange || extent(xs, o.xLog);
  let [y0, y1] = o.yRange || extent(ys, o.yLog);
  if (o.diagonal) { const lo = Math.min(x0, y0), hi = Math.max(x1, y1); x0 = y0 = lo; x1 = y1 = hi; }
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  let clipped = 0;
  if (o.equal) {
    // the same unit per pixel on both axes, anchored at the data's lower left (a Nyquist plot
    // grows right and up); a tail far taller than the rest (a blocking electrode's capacitive
    // branch) may not squeeze the data into a strip: the window is at most 4 times the data's
    // width, and what runs off the top is counted in data-clipped
    const ux = (x1 - x0) / pw, uy = (y1 - y0) / ph;
    if (ux >= uy) y1 = y0 + ux * ph;
    else {
      const u = Math.min(uy, 4 * ux);
      x1 = x0 + u * pw;
      y1 = y0 + u * ph;
      clipped = all.filter((p) => p.y > y1 || p.x > x1).length;
    }
  }
  const X = scale(x0, x1, m.l, m.l + pw, o.xLog), Y = scale(y0, y1, m.t + ph, m.t, o.yLog);
  const parts = [];
  const xt = o.xLog ? logTicks(x0, x1) : ticks(x0, x1, Math.max(3, Math.round(pw / 90)));
  const yt = o.yLog ? logTicks(y0, y1) : ticks(y0, y1, Math.max(3, Math.round(ph / 50)));
  const xd = tickDigits(xt), yd = tickDigits(yt);
  for (const t of xt) parts.push(`<line class="gridline" x1="${X(t)}" x2="${X(t)}" y1="${m.t}" y2="${m.t + ph}"/><text class="tick x" x="${X(t)}" y="${m.t + ph + 14}" text-anchor="middle">${esc(fmt(t, xd))}</text>`);
  for (const t of yt) parts.push(`<line class="gridline" x1="${m.l}" x2="${m.l + pw}" y1="${Y(t)}" y2="${Y(t)}"/><text class="tick y" x="${m.l - 5}" y="${Y(t) + 3.5}" text-anchor="end">${esc(fmt(t, yd))}</text>`);
  parts.push(`<line class="axis" x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}"/><line class="axis" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}"/>`);
  if (o.diagonal) parts.push(`<line class="gridline" style="stroke-dasharray:4 3;stroke:var(--muted)" x1="${X(x0)}" y1="${Y(y0)}" x2="${X(x1)}" y2="${Y(y1)}"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">${esc(o.xLabel || "")}</text>`);
  parts.push(`<text transform="translate(13 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel || "")}</text>`);
  if (o.title) parts.push(`<text class="title" x="${m.l}" y="16">${esc(o.title)}</text>`);
  const clip = `c${Math.random().toString(36).slice(2, 9)}`;
  parts.push(`<clipPath id="${clip}"><rect x="${m.l}" y="${m.t - 4}" width="${pw + 4}" height="${ph + 8}"/></clipPath><g clip-path="url(#${clip})">`);
  for (const s of series) {
    if (s.line) {
      const d = s.points.map((p, i) => `${i ? "L" : "M"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join("");
      parts.push(`<path class="line ${s.cls}" d="${d}"${s.dash ? ' stroke-dasharray="5 3"' : ""}/>`);
    }
    if (s.marker !== false && (!s.line || s.marker)) {
      for (const p of s.points) {
        if (p.yerr) parts.push(`<line class="err ${s.cls}" x1="${X(p.x)}" x2="${X(p.x)}" y1="${Y(p.y - p.yerr)}" y2="${Y(p.y + p.yerr)}"/>`);
        if (p.xerr) parts.push(`<line class="err ${s.cls}" y1="${Y(p.y)}" y2="${Y(p.y)}" x1="${X(p.x - p.xerr)}" x2="${X(p.x + p.xerr)}"/>`);
        const r = p.hi ? 6 : s.r || 3.6;
        const tip = `<title>${esc(p.title || `${s.name ? s.name + ": " : ""}(${fmt(p.x)}, ${fmt(p.y)})`)}</title>`;
        const c = `<circle class="pt ${s.cls}${s.hollow ? " hollow" : ""}${p.hi ? " hi" : ""}" cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="${r}">${tip}</circle>`;
        parts.push(p.href ? `<a href="${esc(p.href)}" data-link>${c}</a>` : c);
      }
    }
  }
  parts.push(`</g>`);
  const named = series.filter((s) => s.name);
  if (named.length > 1 || (named.length === 1 && o.legend)) {
    let lx = m.l + 8, ly = m.t + 10;
    const items = named.map((s) => {
      const w = 26 + s.name.length * 6.3;
      if (lx + w > m.l + pw) { lx = m.l + 8; ly += 15; }
      const g = `<g class="legend"><rect class="${s.cls}" x="${lx}" y="${ly - 7}" width="12" height="4" rx="1"/><text x="${lx + 16}" y="${ly - 2}">${esc(s.name)}</text></g>`;
      lx += w;
      return g;
    });
    parts.push(...items);
  }
  if (clipped) parts.push(`<text class="chart-clipped" x="${m.l + pw - 4}" y="${m.t + 12}" text-anchor="end">${clipped} point${clipped > 1 ? "s" : ""} above ↑ (up to ${esc(fmt(Math.max(...all.map((p) => p.y)), 3))})</text>`);
  const range = [x0, x1, y0, y1].map((v) => Number(v.toPrecision(6))).join(" ");
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" style="max-width:${Math.round(W * 1.3)}px" role="img" aria-label="${esc(o.title || o.yLabel || "chart")}" data-points="${all.length}" data-range="${range}" data-plot="${pw} ${ph}" data-clipped="${clipped}">${parts.join("")}</svg>`;
}

function empty(o, W, H) {
  return `<svg class="chart" viewBox="0 0 ${W} ${Math.min(H, 120)}" data-points="0">${o.title ? `<text class="title" x="10" y="16">${esc(o.title)}</text>` : ""}<text x="${W / 2}" y="${Math.min(H, 120) / 2 + 6}" text-anchor="middle">${esc(o.emptyText || "no data yet")}</text></svg>`;
}

// viridis, sampled (matplotlib's colormap, CC0)
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
function lerpHex(a, b, t) {
  const pa = [1, 3, 5].map((i) => parseInt(a.slice(i, i + 2), 16)), pb = [1, 3, 5].map((i) => parseInt(b.slice(i, i + 2), 16));
  return `rgb(${pa.map((v, i) => Math.round(v + (pb[i] - v) * t)).join(",")})`;
}
export function viridis(t) {
  t = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t));
  return lerpHex(VIRIDIS[i], VIRIDIS[i + 1], t - i);
}

// heatmap({xs, ys, z: z[i][j] at (xs[i], ys[j]), title, xLabel, yLabel, zLabel, points: [{x,y,title}]})
export function heatmap(o) {
  const W = o.width || 420, H = o.height || 300;
  const m = { l: 58, r: 64, t: o.title ? 26 : 10, b: 42 };
  const { xs, ys, z } = o;
  if (!xs?.length || !ys?.length || !z?.length) return empty(o, W, H);
  const vals = z.flat().filter(Number.isFinite);
  const zmin = Math.min(...vals), zmax = Math.max(...vals);
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const edges = (v) => v.map((c, i) => [i ? (v[i - 1] + c) / 2 : c - (v[1] - c) / 2, i < v.length - 1 ? (c + v[i + 1]) / 2 : c + (c - v[i - 1]) / 2]);
  const ex = xs.length > 1 ? edges(xs) : [[xs[0] - 0.5, xs[0] + 0.5]], ey = ys.length > 1 ? edges(ys) : [[ys[0] - 0.5, ys[0] + 0.5]];
  const x0 = ex[0][0], x1 = ex[ex.length - 1][1], y0 = ey[0][0], y1 = ey[ey.length - 1][1];
  const X = scale(x0, x1, m.l, m.l + pw), Y = scale(y0, y1, m.t + ph, m.t);
  const parts = [];
  if (o.title) parts.push(`<text class="title" x="${m.l}" y="16">${esc(o.title)}</text>`);
  for (let i = 0; i < xs.length; i++) for (let j = 0; j < ys.length; j++) {
    const v = z[i]?.[j];
    if (!Number.isFinite(v)) continue;
    const t = zmax > zmin ? (v - zmin) / (zmax - zmin) : 0.5;
    const xa = X(ex[i][0]), xb = X(ex[i][1]), ya = Y(ey[j][1]), yb = Y(ey[j][0]);
    parts.push(`<rect x="${xa.toFixed(1)}" y="${ya.toFixed(1)}" width="${(xb - xa + 0.6).toFixed(1)}" height="${(yb - ya + 0.6).toFixed(1)}" fill="${viridis(t)}"><title>${esc(`${o.xLabel}=${fmt(xs[i])}, ${o.yLabel}=${fmt(ys[j])}: ${fmt(v)}`)}</title></rect>`);
  }
  for (const t of ticks(x0, x1, 4)) parts.push(`<text x="${X(t)}" y="${m.t + ph + 14}" text-anchor="middle">${esc(fmt(t, 3))}</text>`);
  for (const t of ticks(y0, y1, 4)) parts.push(`<text x="${m.l - 5}" y="${Y(t) + 3.5}" text-anchor="end">${esc(fmt(t, 3))}</text>`);
  parts.push(`<rect class="axis" fill="none" x="${m.l}" y="${m.t}" width="${pw}" height="${ph}"/>`);
  for (const p of o.points || []) {
    if (Number.isFinite(p.x) && Number.isFinite(p.y)) parts.push(`<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="3.5" fill="none" stroke="#fff" stroke-width="1.6"><title>${esc(p.title || "")}</title></circle>`);
  }
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">${esc(o.xLabel || "")}</text>`);
  parts.push(`<text transform="translate(13 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel || "")}</text>`);
  const cbx = m.l + pw + 14, n = 40;
  for (let k = 0; k < n; k++) parts.push(`<rect x="${cbx}" y="${(m.t + ph - ((k + 1) * ph) / n).toFixed(1)}" width="12" height="${(ph / n + 0.6).toFixed(1)}" fill="${viridis(k / (n - 1))}"/>`);
  parts.push(`<text x="${cbx + 15}" y="${m.t + 8}">${esc(fmt(zmax, 3))}</text><text x="${cbx + 15}" y="${m.t + ph}">${esc(fmt(zmin, 3))}</text>`);
  parts.push(`<text transform="translate(${cbx + 30} ${m.t + ph / 2}) rotate(90)" text-anchor="middle">${esc(o.zLabel || "")}</text>`);
  return `<svg class="chart heatmap" viewBox="0 0 ${W} ${H}" style="max-width:${Math.round(W * 1.35)}px" role="img" aria-label="${esc(o.title || "heat map")}" data-cells="${vals.length}">${parts.join("")}</svg>`;
}

// bars({title, items: [{label, total, part, note}]}): a funnel (part of total per row)
export function bars(o) {
  const items = o.items || [];
  const W = o.width || 640, rowH = 30, H = (o.title ? 26 : 8) + rowH * Math.max(1, items.length) + 6;
  if (!items.length) return empty(o, W, 100);
  const lw = 150, pw = W - lw - 90, max = Math.max(1, ...items.map((i) => i.total || 0));
  const parts = o.title ? [`<text class="title" x="0" y="16">${esc(o.title)}</text>`] : [];
  items.forEach((it, k) => {
    const y = (o.title ? 26 : 8) + k * rowH;
    const wt = (pw * (it.total || 0)) / max, wp = (pw * (it.part || 0)) / max;
    parts.push(`<text x="${lw - 8}" y="${y + 15}" text-anchor="end" style="fill:var(--fg)">${esc(it.label)}</text>`);
    parts.push(`<rect class="bar bg" x="${lw}" y="${y + 4}" width="${wt.toFixed(1)}" height="16" rx="3"><title>${esc(`${it.label}: ${it.total} in`)}</title></rect>`);
    parts.push(`<rect class="bar s${k % 8}" x="${lw}" y="${y + 4}" width="${wp.toFixed(1)}" height="16" rx="3"><title>${esc(`${it.label}: ${it.part} passed`)}</title></rect>`);
    parts.push(`<text x="${lw + Math.max(wt, wp) + 6}" y="${y + 16}">${esc(it.note ?? `${it.part} / ${it.total}`)}</text>`);
  });
  return `<svg class="chart bars" viewBox="0 0 ${W} ${H}" style="max-width:${Math.round(W * 1.4)}px" role="img" aria-label="${esc(o.title || "bars")}">${parts.join("")}</svg>`;
}

// Siblings grouped: in a column with more than `max` nodes, those of one kind (their `sub`)
// become one node "N results" (data-group) with their edges merged, unless the group's key
// is in `expanded`; the self node and linked pages of a small group stay.
export function groupSiblings(g, expanded = new Set(), max = 8) {
  const byCol = {};
  for (const n of g.nodes) (byCol[n.col] ||= []).push(n);
  const into = {};
  const nodes = [];
  for (const [col, list] of Object.entries(byCol)) {
    if (list.length <= max) { nodes.push(...list); continue; }
    const kinds = {};
    for (const n of list) (kinds[(n.sub || "").replace(/\s·.*$/, "")] ||= []).push(n);
    for (const [kind, members] of Object.entries(kinds)) {
      const key = `${col}:${kind}`;
      const rest = members.filter((n) => !n.self);
      if (expanded.has(key) || rest.length < 3) { nodes.push(...members); continue; }
      nodes.push(...members.filter((n) => n.self));
      const id = `group:${key}`;
      nodes.push({ id, label: `${rest.length} × ${kind || "node"}`, sub: "siblings: click to expand", col: Number(col), group: key });
      for (const n of rest) into[n.id] = id;
    }
  }
  const seen = new Set();
  const edges = [];
  for (const e of g.edges) {
    const from = into[e.from] || e.from, to = into[e.to] || e.to;
    const k = `${from}>${to}`;
    if (from === to || seen.has(k)) continue;
    seen.add(k);
    edges.push({ ...e, from, to, label: into[e.from] || into[e.to] ? "" : e.label });
  }
  return { ...g, nodes, edges, grouped: Object.keys(into).length };
}

// graph({nodes: [{id, label, sub, col, href, self, group}], edges: [{from, to, label}]}): columns by col
export function graph(o) {
  const nodes = o.nodes || [];
  if (!nodes.length) return empty(o, 600, 100);
  const cols = [...new Set(nodes.map((n) => n.col))].sort((a, b) => a - b);
  const byCol = cols.map((c) => nodes.filter((n) => n.col === c));
  const nw = 190, nh = 40, gx = 84, gy = 16;
  const W = Math.max(400, cols.length * (nw + gx) - gx + 20), H = Math.max(...byCol.map((c) => c.length)) * (nh + gy) + 20;
  const pos = {};
  byCol.forEach((list, ci) => {
    const off = (H - list.length * (nh + gy) + gy) / 2;
    list.forEach((n, k) => { pos[n.id] = { x: 10 + ci * (nw + gx), y: off + k * (nh + gy) }; });
  });
  const parts = [`<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" style="fill:var(--muted)"/></marker></defs>`];
  for (const e of o.edges || []) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const fwd = a.x <= b.x;
    const x1 = fwd ? a.x + nw : a.x, x2 = fwd ? b.x : b.x + nw, y1 = a.y + nh / 2, y2 = b.y + nh / 2;
    const mx = (x1 + x2) / 2;
    parts.push(`<path class="edge" marker-end="url(#arr)" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}"><title>${esc(e.label || "")}</title></path>`);
    if (e.label) parts.push(`<text class="edge-label" x="${mx}" y="${(y1 + y2) / 2 - 3}" text-anchor="middle">${esc(e.label)}</text>`);
  }
  for (const n of nodes) {
    const p = pos[n.id];
    const label = n.label.length > 28 ? n.label.slice(0, 27) + "…" : n.label;
    const sub = (n.sub || "").length > 32 ? n.sub.slice(0, 31) + "…" : n.sub || "";
    const g = `<g class="node${n.self ? " self" : ""}${n.group ? " prov-group" : ""}" data-node="${esc(n.id)}"${n.group ? ` data-group="${esc(n.group)}" role="button" tabindex="0"` : ""}><rect x="${p.x}" y="${p.y}" width="${nw}" height="${nh}" rx="6"/><text x="${p.x + 8}" y="${p.y + 16}">${esc(label)}</text><text class="sub" x="${p.x + 8}" y="${p.y + 31}">${esc(sub)}</text><title>${esc(`${n.label}\n${n.sub || ""}`)}</title></g>`;
    parts.push(n.href ? `<a href="${esc(n.href)}" data-link>${g}</a>` : g);
  }
  return `<svg class="chart graph" viewBox="0 0 ${W} ${H}" style="max-width:${W}px" role="img" aria-label="provenance graph">${parts.join("")}</svg>`;
}

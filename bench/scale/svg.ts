/** A small log-log line chart as SVG text: panels side by side, one line per series. */

export interface Series {
  label: string;
  points: { x: number; y: number; measured: boolean }[];
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}

const COLORS = ['#1b6ac9', '#7fb2f0', '#d9480f', '#f59f00', '#2b8a3e', '#862e9c'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number) => (v >= 1000 ? `${v / 1000}k` : v >= 1 ? String(+v.toPrecision(3)) : String(+v.toPrecision(2)));

function panel(p: Panel, ox: number, w: number, h: number): string {
  const m = { l: 60, r: 10, t: 30, b: 45 };
  const xs = p.series.flatMap((s) => s.points.map((q) => q.x));
  const ys = p.series.flatMap((s) => s.points.map((q) => q.y)).filter((y) => y > 0);
  const x0 = Math.floor(Math.log10(Math.min(...xs)));
  const x1 = Math.ceil(Math.log10(Math.max(...xs)));
  const y0 = Math.floor(Math.log10(Math.min(...ys)));
  const y1 = Math.ceil(Math.log10(Math.max(...ys)));
  const X = (x: number) => ox + m.l + ((Math.log10(x) - x0) / (x1 - x0 || 1)) * (w - m.l - m.r);
  const Y = (y: number) => m.t + (1 - (Math.log10(Math.max(y, 10 ** y0)) - y0) / (y1 - y0 || 1)) * (h - m.t - m.b);
  const out: string[] = [];
  out.push(`<text x="${ox + w / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (let e = x0; e <= x1; e++) {
    out.push(`<line x1="${X(10 ** e)}" y1="${m.t}" x2="${X(10 ** e)}" y2="${h - m.b}" stroke="#ddd"/>`);
    out.push(`<text x="${X(10 ** e)}" y="${h - m.b + 16}" text-anchor="middle">${fmt(10 ** e)}</text>`);
  }
  for (let e = y0; e <= y1; e++) {
    out.push(`<line x1="${ox + m.l}" y1="${Y(10 ** e)}" x2="${ox + w - m.r}" y2="${Y(10 ** e)}" stroke="#ddd"/>`);
    out.push(`<text x="${ox + m.l - 6}" y="${Y(10 ** e) + 4}" text-anchor="end">${fmt(10 ** e)}</text>`);
  }
  out.push(`<text x="${ox + (w + m.l) / 2}" y="${h - 8}" text-anchor="middle">${esc(p.xLabel)}</text>`);
  out.push(`<text transform="translate(${ox + 14},${(h + m.t - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
  p.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const pts = s.points.filter((q) => q.y > 0);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((q) => `${X(q.x).toFixed(1)},${Y(q.y).toFixed(1)}`).join(' ')}"/>`);
    for (const q of pts) {
      out.push(
        q.measured
          ? `<circle cx="${X(q.x).toFixed(1)}" cy="${Y(q.y).toFixed(1)}" r="4" fill="${c}"/>`
          : `<circle cx="${X(q.x).toFixed(1)}" cy="${Y(q.y).toFixed(1)}" r="3" fill="white" stroke="${c}"/>`,
      );
    }
  });
  return out.join('\n');
}

/** Panels in a row, with one shared legend under them. */
export function lineChart(panels: Panel[], caption: string): string {
  const w = 460;
  const h = 320;
  const labels = panels[0]?.series.map((s) => s.label) ?? [];
  const legendH = 20 * labels.length + 40;
  const W = w * panels.length;
  const H = h + legendH;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`, `<rect width="100%" height="100%" fill="white"/>`];
  panels.forEach((p, i) => parts.push(panel(p, i * w, w, h)));
  labels.forEach((l, i) => {
    const y = h + 10 + i * 20;
    parts.push(`<line x1="70" y1="${y}" x2="100" y2="${y}" stroke="${COLORS[i % COLORS.length]}" stroke-width="3"/><text x="108" y="${y + 4}">${esc(l)}</text>`);
  });
  parts.push(`<text x="70" y="${h + 20 * labels.length + 22}" fill="#555">${esc(caption)}</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** Terminal tables. */

export type Cell = string | number | null | undefined;

function fmt(c: Cell): string {
  if (c === null || c === undefined) return '—';
  if (typeof c === 'number') {
    if (!Number.isFinite(c)) return '—';
    const a = Math.abs(c);
    return a >= 1000 ? c.toFixed(0) : a >= 100 ? c.toFixed(1) : a >= 10 ? c.toFixed(2) : c.toFixed(3);
  }
  return c;
}

export function table(title: string, head: string[], rows: Cell[][]): string {
  const cells = rows.map((r) => r.map(fmt));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [`\n${title}`, line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export const ratioText = (r: number | null | undefined) => (r === null || r === undefined || !Number.isFinite(r) ? '—' : `${r.toFixed(2)}x`);
export const yesNo = (met: boolean | null) => (met === null ? '—' : met ? 'yes' : 'NO');

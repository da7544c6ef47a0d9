// The roofline chart (SVG): arithmetic intensity (FLOP per byte moved, log scale) across, GFLOP/s
// (log scale) up; the measured roofs are the copy bandwidth (a slope: intensity x GB/s) up to the
// FMA peak (flat), both from the peak microkernels of the same run, with their run-to-run range
// shaded. Each measured row is a point (the tuned or default pick filled, other variants hollow),
// numbered to the table below the chart and named in its tooltip.
import type { PeakSummary, Row } from './report.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function rooflineSvg(rows: readonly Row[], peaks: PeakSummary, adapter: string, time = 'wall time with a sync'): string {
  const pts = rows.filter((r) => r.gflops !== null && r.gflops > 0 && r.intensity !== null && r.intensity > 0);
  const W = 900, H = 560, L = 70, R = 20, T = 40, B = 60;
  const lo = (v: number[]) => 10 ** Math.floor(Math.log10(Math.min(...v)));
  const hi = (v: number[]) => 10 ** Math.ceil(Math.log10(Math.max(...v)));
  const ridge = peaks.gflops / peaks.gbps;
  const xs = [...pts.map((p) => p.intensity!), ridge / 10, ridge * 10];
  const ys = [...pts.map((p) => p.gflops!), peaks.gflops * 1.5, peaks.gflopsRange[0]];
  const [x0, x1, y0, y1] = [lo(xs), hi(xs), lo(ys), hi(ys)];
  const X = (v: number) => L + ((Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * (W - L - R);
  const Y = (v: number) => H - B - ((Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (H - T - B);
  const roof = (g: number, b: number) => {
    const r = g / b;
    return `M${X(x0)},${Y(Math.max(x0 * b, y0))} L${X(r)},${Y(g)} L${X(x1)},${Y(g)}`;
  };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="20" font-size="14">Roofline: ${esc(adapter)}</text>`,
    `<text x="${L}" y="34" fill="#555">roofs measured in this run: FMA ${peaks.gflops.toFixed(2)} GFLOP/s (${peaks.gflopsRange.map((v) => v.toFixed(2)).join('-')}), copy ${peaks.gbps.toFixed(2)} GB/s (${peaks.gbpsRange.map((v) => v.toFixed(2)).join('-')}); ${esc(time)}</text>`,
  ];
  for (let e = Math.log10(x0); e <= Math.log10(x1); e++) out.push(`<line x1="${X(10 ** e)}" x2="${X(10 ** e)}" y1="${T}" y2="${H - B}" stroke="#eee"/><text x="${X(10 ** e)}" y="${H - B + 15}" text-anchor="middle">${10 ** e >= 1 ? 10 ** e : (10 ** e).toPrecision(1)}</text>`);
  for (let e = Math.log10(y0); e <= Math.log10(y1); e++) out.push(`<line x1="${L}" x2="${W - R}" y1="${Y(10 ** e)}" y2="${Y(10 ** e)}" stroke="#eee"/><text x="${L - 6}" y="${Y(10 ** e) + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toPrecision(1)}</text>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 20}" text-anchor="middle">arithmetic intensity (FLOP / byte)</text>`);
  out.push(`<text transform="translate(16,${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">GFLOP/s</text>`);
  out.push(`<path d="${roof(peaks.gflopsRange[0], peaks.gbpsRange[0])}" stroke="#f4a" stroke-dasharray="4 3" fill="none"/>`);
  out.push(`<path d="${roof(peaks.gflopsRange[1], peaks.gbpsRange[1])}" stroke="#f4a" stroke-dasharray="4 3" fill="none"/>`);
  out.push(`<path d="${roof(peaks.gflops, peaks.gbps)}" stroke="#c02" stroke-width="2" fill="none"/>`);
  out.push(`<text x="${X(ridge) + 6}" y="${Y(peaks.gflops) - 5}" fill="#c02">FMA peak ${peaks.gflops.toFixed(1)} GFLOP/s</text>`);
  out.push(`<text x="${X(Math.max(x0 * 1.5, ridge / 30))}" y="${Y(Math.max(x0 * 1.5, ridge / 30) * peaks.gbps) - 6}" fill="#c02">copy ${peaks.gbps.toFixed(2)} GB/s</text>`);
  const colours: Record<string, string> = { matmul: '#1f77b4', conv: '#2ca02c', attention: '#9467bd', norm: '#ff7f0e', elementwise: '#8c564b', interpolate: '#17becf', optim: '#7f7f7f' };
  pts.forEach((p) => {
    const n = rows.indexOf(p) + 1;
    const c = colours[p.family] ?? '#000';
    const filled = p.picked || !p.registry;
    out.push(
      `<g><title>${n}. ${esc(p.name)} [${esc(p.variant)}]: ${p.gflops!.toFixed(3)} GFLOP/s at ${p.intensity!.toFixed(2)} FLOP/B</title>` +
        `<circle cx="${X(p.intensity!).toFixed(1)}" cy="${Y(p.gflops!).toFixed(1)}" r="5" fill="${filled ? c : 'white'}" stroke="${c}" stroke-width="1.5"/>` +
        `<text x="${(X(p.intensity!) + 6).toFixed(1)}" y="${(Y(p.gflops!) - 4).toFixed(1)}" fill="${c}" font-size="9">${n}</text></g>`,
    );
  });
  const fams = Object.entries(colours).filter(([f]) => pts.some((p) => p.family === f));
  let ly = H - B - 14 * fams.length - 22;
  const lx = W - R - 200;
  for (const [f, c] of fams) {
    out.push(`<circle cx="${lx}" cy="${ly}" r="4" fill="${c}"/><text x="${lx + 10}" y="${ly + 4}">${f}</text>`);
    ly += 14;
  }
  out.push(`<text x="${lx - 4}" y="${ly + 6}" fill="#555">filled: what the op runs; hollow: other variants</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

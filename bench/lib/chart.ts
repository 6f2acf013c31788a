/** A plain SVG bar chart (no dependencies): one bar per label, value printed at its end. */
export function barChart(title: string, unit: string, bars: { label: string; value: number; note?: string }[]): string {
  const width = 760;
  const rowH = 34;
  const left = 230;
  const top = 48;
  const max = Math.max(...bars.map((b) => b.value), 1e-9);
  const scale = (width - left - 140) / max;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const rows = bars
    .map((b, i) => {
      const y = top + i * rowH;
      const w = Math.max(1, b.value * scale);
      return [
        `<text x="${left - 10}" y="${y + 20}" text-anchor="end" font-size="14">${esc(b.label)}</text>`,
        `<rect x="${left}" y="${y + 5}" width="${w.toFixed(1)}" height="22" fill="${i === 0 ? '#2f6fdf' : '#9aa7b8'}"/>`,
        `<text x="${(left + w + 8).toFixed(1)}" y="${y + 20}" font-size="13">${b.value.toFixed(2)} ${esc(unit)}${b.note ? ' ' + esc(b.note) : ''}</text>`,
      ].join('');
    })
    .join('\n');
  const height = top + bars.length * rowH + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="28" font-size="17" font-weight="bold">${esc(title)}</text>
${rows}
</svg>
`;
}

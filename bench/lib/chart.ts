/**
 * A small SVG line chart: latency (log scale) against offered rate, one colour per scenario, p99 solid and
 * p50 dashed. Hand-written: the whole need is a few polylines and axis labels.
 */
export interface Series {
  readonly name: string
  readonly points: ReadonlyArray<{ readonly rate: number; readonly p50: number; readonly p99: number }>
}

const colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

export const latencyChart = (title: string, series: ReadonlyArray<Series>): string => {
  const width = 860
  const height = 480
  const m = { left: 70, right: 190, top: 40, bottom: 50 }
  const plotW = width - m.left - m.right
  const plotH = height - m.top - m.bottom
  const all = series.flatMap((s) => s.points)
  // offered rate on a log scale too: the yardsticks run to 10,000/s, the full system to a few hundred
  const xMin = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...all.map((p) => p.rate)))))
  const xMax = 10 ** Math.ceil(Math.log10(Math.max(10, ...all.map((p) => p.rate))))
  const values = all.flatMap((p) => [p.p50, p.p99]).filter((v) => v > 0)
  const yMin = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...values, 1))))
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)))
  const x = (rate: number) =>
    m.left + ((Math.log10(Math.max(rate, xMin)) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * plotW
  const y = (ms: number) =>
    m.top + plotH - ((Math.log10(Math.max(ms, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH
  const parts: Array<string> = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escape(title)}</text>`
  )
  for (let v = yMin; v <= yMax * 1.0001; v *= 10) {
    parts.push(
      `<line x1="${m.left}" x2="${m.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${m.left - 8}" y="${y(v) + 4}" text-anchor="end">${v >= 1 ? v.toLocaleString("en") : v} ms</text>`
    )
  }
  for (let decade = xMin; decade < xMax * 1.0001; decade *= 10) {
    for (const k of [1, 2, 5]) {
      const r = decade * k
      if (r > xMax * 1.0001) break
      parts.push(
        `<line x1="${x(r)}" x2="${x(r)}" y1="${m.top}" y2="${m.top + plotH}" stroke="#eee"/>`,
        `<text x="${x(r)}" y="${m.top + plotH + 18}" text-anchor="middle">${r.toLocaleString("en")}</text>`
      )
    }
  }
  parts.push(
    `<text x="${m.left + plotW / 2}" y="${height - 10}" text-anchor="middle">offered rate (POST /orders per second, open loop; log scale)</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`
  )
  series.forEach((s, i) => {
    const colour = colours[i % colours.length]!
    const line = (pick: (p: Series["points"][number]) => number, dash: string) =>
      `<polyline fill="none" stroke="${colour}" stroke-width="2" ${dash} points="${
        s.points.map((p) => `${x(p.rate).toFixed(1)},${y(pick(p)).toFixed(1)}`).join(" ")
      }"/>`
    parts.push(line((p) => p.p99, ""), line((p) => p.p50, `stroke-dasharray="5,4"`))
    for (const p of s.points) parts.push(`<circle cx="${x(p.rate)}" cy="${y(p.p99)}" r="3" fill="${colour}"/>`)
    const ly = m.top + 14 + i * 20
    parts.push(
      `<line x1="${width - m.right + 15}" x2="${width - m.right + 40}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${width - m.right + 46}" y="${ly + 4}">${escape(s.name)}</text>`
    )
  })
  const ly = m.top + 14 + series.length * 20 + 10
  parts.push(
    `<line x1="${width - m.right + 15}" x2="${width - m.right + 40}" y1="${ly}" y2="${ly}" stroke="#555" stroke-width="2"/>`,
    `<text x="${width - m.right + 46}" y="${ly + 4}">p99</text>`,
    `<line x1="${width - m.right + 15}" x2="${width - m.right + 40}" y1="${ly + 18}" y2="${ly + 18}" stroke="#555" stroke-width="2" stroke-dasharray="5,4"/>`,
    `<text x="${width - m.right + 46}" y="${ly + 22}">p50</text>`,
    `</svg>`
  )
  return parts.join("\n") + "\n"
}

/** Reading Prometheus's text format in tests. */

/**
 * The value of a metric in Prometheus's text format: the sum over every series whose labels
 * include `labels` (so leaving a label out adds up its values), 0 when there is none yet.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** The values a label takes in the series of a metric. */
export function labelValues(text: string, name: string, label: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)\{(.*)\} \S+$/.exec(line);
    if (!m || m[1] !== name) continue;
    const v = new RegExp(`(?:^|,)${label}="((?:[^"\\\\]|\\\\.)*)"`).exec(m[2]!)?.[1];
    if (v !== undefined) out.add(v);
  }
  return out;
}

/** Waits for a condition that another process, a timer or a server brings about, polling it. */
export async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 30_000, everyMs = 100): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

import { chromium, type Browser } from '@playwright/test';

/** Web mode from the build, as a separate process so its CPU and memory can be measured alone. */
export { startWeb as startWebProcess } from '../../test/e2e/web-server';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.QUORUMSCOPE_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** CPU seconds (user + system) and RSS of a process, from /proc. */
export async function processUsage(pid: number): Promise<{ cpuSeconds: number; rssBytes: number }> {
  const { readFile } = await import('node:fs/promises');
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const ticksPerSecond = 100;
  const utime = Number(stat[11]);
  const stime = Number(stat[12]);
  const rssPages = Number(stat[21]);
  return { cpuSeconds: (utime + stime) / ticksPerSecond, rssBytes: rssPages * 4096 };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from '@playwright/test';

/** Web mode from the build, as a separate process so its CPU and memory can be measured alone. */
export async function startWebProcess(): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const configDir = await mkdtemp(path.join(os.tmpdir(), 'qs-bench-web-'));
  const child: ChildProcess = spawn(process.execPath, ['bin/quorumscope.mjs', 'web', '--port', '0', '--no-open', '--log-level', 'warn'], {
    env: { ...process.env, QUORUMSCOPE_CONFIG_DIR: configDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`web mode did not start: ${output}`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /(http:\/\/127\.0\.0\.1:\d+\/#session=\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`web mode exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(configDir, { recursive: true, force: true });
    },
  };
}

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

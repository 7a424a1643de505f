/**
 * What every benchmark shares: the machine it ran on, percentiles, a printed
 * table and the machine-readable result in bench/results/NAME.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  disk: string;
  node: string;
  platform: string;
  /** 1, 5 and 15 minute load averages when the result was written: other work on the machine skews timings. */
  loadAverage: number[];
}

function diskOf(directory: string): string {
  try {
    const source = execFileSync('df', ['--output=source,fstype', directory], { encoding: 'utf8' }).trim().split('\n')[1] ?? '';
    const [device = '', fstype = ''] = source.trim().split(/\s+/);
    const base = path.basename(device).replace(/[0-9]+$/, '').replace(/p$/, '');
    let rotational = 'unknown';
    try {
      const flag = readFileSync(`/sys/block/${base}/queue/rotational`, 'utf8').trim();
      // A virtio disk's flag says nothing about the host's storage behind it.
      rotational = base.startsWith('vd') ? `virtio block device (reports rotational=${flag})` : flag === '0' ? 'non-rotational' : 'rotational';
    } catch {
      // Containers and overlay file systems often hide the block device.
    }
    return `${device} ${fstype}, ${rotational}`;
  } catch {
    return 'unknown';
  }
}

export function machineInfo(directory = os.tmpdir()): MachineInfo {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    disk: diskOf(directory),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map((load) => round(load, 2)),
  };
}

/** The q-quantile (0..1) of samples, nearest-rank; NaN when empty. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((left, right) => left - right);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function printTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  const cells = [headers, ...rows].map((row) => row.map((cell) => String(cell)));
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]) => `| ${row.map((cell, column) => cell.padStart(widths[column] ?? 0)).join(' | ')} |`;
  console.log(line(cells[0] as string[]));
  console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const row of cells.slice(1)) console.log(line(row));
}

/** The commit the tree is based on and whether the tree differs from it (timings then describe uncommitted code). */
function sourceOf(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: true };
  }
}

export function writeResult(name: string, result: Record<string, unknown>): string {
  const directory = path.resolve('bench/results');
  mkdirSync(directory, { recursive: true });
  const file = path.join(directory, `${name}.json`);
  const body = {
    benchmark: name,
    date: new Date().toISOString(),
    command: `npm run bench -- ${[path.basename(process.argv[1] ?? name, '.bench.ts'), ...process.argv.slice(2)].join(' ')}`,
    machine: machineInfo(),
    source: sourceOf(),
    ...result,
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`\nresult written to ${path.relative(process.cwd(), file)}`);
  return file;
}

/** A tiny `--name value` parser for benchmark knobs; unknown flags are errors. */
export function parseArgs<T extends Record<string, number>>(defaults: T): T {
  const values: Record<string, number> = { ...defaults };
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i += 1) {
    const flag = args[i] ?? '';
    const key = flag.replace(/^--/, '').replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
    const value = Number(args[i + 1]);
    if (!flag.startsWith('--') || !(key in defaults) || !Number.isFinite(value)) {
      throw new Error(`usage: ${Object.keys(defaults).map((name) => `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} N`).join(' ')}`);
    }
    values[key] = value;
    i += 1;
  }
  return values as T;
}

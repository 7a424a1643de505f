/**
 * Write throughput and latency of a 3-node Quorumscope cluster (fsync on,
 * the agent's defaults) next to a 3-member etcd 3.4 cluster (default
 * durability), both on 127.0.0.1, under the same closed-loop load: C clients,
 * each sending its next 256-byte put to the leader as soon as the last one is
 * answered. Both are driven through the same Node HTTP client code and one
 * keep-alive agent per system. Client and servers share this machine's cores.
 *
 *   npm run bench -- write [--duration-s N] [--warmup-s N] [--rounds N] [--value-bytes N]
 */
import type http from 'node:http';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createAgent, request, sleep } from './lib/http';
import { parseArgs, printTable, quantile, round, writeResult } from './lib/report';
import { startEtcd, startQuorumscope, type BenchSystem } from './lib/systems';

const options = parseArgs({ durationS: 5, warmupS: 1, rounds: 2, valueBytes: 256, keysPerClient: 100 });
const concurrencies = [1, 16, 64] as const;
const requestTimeoutMs = 5_000;
const idleMs = 5_000;
/** A bound on every client loop besides its deadline. */
const requestsPerClientMax = 1_000_000;

interface LevelResult {
  system: string;
  clients: number;
  ok: number;
  failed: number;
  seconds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  fsyncsPerWrite: number | null;
  followerFsyncsPerWrite: number | null;
  fsyncMeanMs: number | null;
  /** Server CPU (all three nodes) per committed write, in microseconds. */
  serverCpuUsPerWrite: number | null;
}

const value = 'v'.repeat(options.valueBytes);

async function runLoad(system: BenchSystem, agent: http.Agent, leader: string, clients: number, seconds: number) {
  const latenciesMs: number[] = [];
  let failed = 0;
  const deadline = performance.now() + seconds * 1000;
  const client = async (clientIndex: number) => {
    for (let sent = 0; sent < requestsPerClientMax && performance.now() < deadline; sent += 1) {
      const key = `bench/${clientIndex}/${sent % options.keysPerClient}`;
      const started = performance.now();
      const answer = await system.put(agent, leader, key, value, requestTimeoutMs);
      if (answer.status === 200) latenciesMs.push(performance.now() - started);
      else failed += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  return { latenciesMs, failed, elapsedS: (performance.now() - started) / 1000 };
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux). */
const userHz = 100;

/** CPU milliseconds (user + system) a process has used so far, from /proc; null if it is gone. */
function cpuMsOf(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / userHz;
  } catch {
    return null;
  }
}

function clusterCpuMs(system: BenchSystem): number | null {
  const times = system.ids().map((id) => cpuMsOf(system.pidOf(id)));
  return times.some((time) => time === null) ? null : times.reduce((sum: number, time) => sum + (time ?? 0), 0);
}

/** Quorumscope's fsync histogram from the leader's /metrics (count, sum in seconds). */
async function fsyncCounters(system: BenchSystem, agent: http.Agent, leader: string): Promise<{ count: number; sumS: number } | null> {
  if (system.name !== 'quorumscope') return null;
  const answer = await request(agent, { method: 'GET', url: `http://${system.httpOf(leader)}/metrics`, timeoutMs: 2_000 });
  const count = /^quorumscope_fsync_duration_seconds_count(?:\{[^}]*\})? (\S+)$/m.exec(answer.text)?.[1];
  const sum = /^quorumscope_fsync_duration_seconds_sum(?:\{[^}]*\})? (\S+)$/m.exec(answer.text)?.[1];
  return count === undefined || sum === undefined ? null : { count: Number(count), sumS: Number(sum) };
}

interface Sample {
  latenciesMs: number[];
  failed: number;
  elapsedS: number;
  leaderFsyncs: number | null;
  followerFsyncs: number | null;
  fsyncSumS: number | null;
  /** CPU time all three server processes used during the timed load. */
  serverCpuMs: number | null;
}

/** One measured level on one system: warm-up, then the timed load with fsync counters around it. */
async function measureLevel(system: BenchSystem, agent: http.Agent, clients: number): Promise<Sample> {
  const leader = await system.waitForLeader(agent, 20_000);
  await runLoad(system, agent, leader, clients, options.warmupS);
  const follower = system.ids().find((id) => id !== leader) ?? leader;
  const before = await fsyncCounters(system, agent, leader);
  const followerBefore = await fsyncCounters(system, agent, follower);
  const cpuBefore = clusterCpuMs(system);
  const { latenciesMs, failed, elapsedS } = await runLoad(system, agent, leader, clients, options.durationS);
  const cpuAfter = clusterCpuMs(system);
  const after = await fsyncCounters(system, agent, leader);
  const followerAfter = await fsyncCounters(system, agent, follower);
  if ((await system.leader(agent)) !== leader) console.warn(`warning: ${system.name} changed leader during the run`);
  console.log(`${system.name} ${clients} clients: ${Math.round(latenciesMs.length / elapsedS)} ops/s`);
  return {
    latenciesMs,
    failed,
    elapsedS,
    leaderFsyncs: before !== null && after !== null ? after.count - before.count : null,
    followerFsyncs: followerBefore !== null && followerAfter !== null ? followerAfter.count - followerBefore.count : null,
    fsyncSumS: before !== null && after !== null ? after.sumS - before.sumS : null,
    serverCpuMs: cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore : null,
  };
}

function combine(system: string, clients: number, samples: readonly Sample[]): LevelResult {
  const latenciesMs = samples.flatMap((sample) => sample.latenciesMs);
  const seconds = samples.reduce((sum, sample) => sum + sample.elapsedS, 0);
  const sumOrNull = (read: (sample: Sample) => number | null) =>
    samples.some((sample) => read(sample) === null) ? null : samples.reduce((sum, sample) => sum + (read(sample) ?? 0), 0);
  const leaderFsyncs = sumOrNull((sample) => sample.leaderFsyncs);
  const followerFsyncs = sumOrNull((sample) => sample.followerFsyncs);
  const fsyncSumS = sumOrNull((sample) => sample.fsyncSumS);
  const serverCpuMs = sumOrNull((sample) => sample.serverCpuMs);
  const writes = Math.max(1, latenciesMs.length);
  return {
    system,
    clients,
    ok: latenciesMs.length,
    failed: samples.reduce((sum, sample) => sum + sample.failed, 0),
    seconds,
    opsPerSecond: latenciesMs.length / seconds,
    p50Ms: quantile(latenciesMs, 0.5),
    p99Ms: quantile(latenciesMs, 0.99),
    maxMs: Math.max(...latenciesMs),
    fsyncsPerWrite: leaderFsyncs === null ? null : leaderFsyncs / writes,
    followerFsyncsPerWrite: followerFsyncs === null ? null : followerFsyncs / writes,
    fsyncMeanMs: leaderFsyncs === null || fsyncSumS === null ? null : (fsyncSumS * 1000) / Math.max(1, leaderFsyncs),
    serverCpuUsPerWrite: serverCpuMs === null ? null : (serverCpuMs * 1000) / writes,
  };
}

async function main(): Promise<void> {
  // Both clusters run for the whole benchmark and the levels alternate
  // between them (ours, etcd, ours, etcd, ... for `rounds` rounds), so that
  // drift in what else the machine is doing hits both systems alike.
  const systems: BenchSystem[] = [];
  const agents = new Map<string, http.Agent>();
  const samples = new Map<string, Sample[]>();
  const loadAverages: number[][] = [os.loadavg()];
  const idleCpuPercent: Record<string, number | null> = {};
  try {
    systems.push(await startQuorumscope({ nodes: 3 }));
    systems.push(await startEtcd({ nodes: 3 }));
    for (const system of systems) agents.set(system.name, createAgent());
    // What the three servers burn with no client load at all (ticks, heartbeats, background work).
    for (const system of systems) {
      await system.waitForLeader(agents.get(system.name) as http.Agent, 20_000);
      const before = clusterCpuMs(system);
      await sleep(idleMs);
      const after = clusterCpuMs(system);
      idleCpuPercent[system.name] = before === null || after === null ? null : ((after - before) / idleMs) * 100;
    }
    for (let round = 0; round < options.rounds; round += 1) {
      for (const clients of concurrencies) {
        for (const system of systems) {
          const sample = await measureLevel(system, agents.get(system.name) as http.Agent, clients);
          const key = `${system.name}/${clients}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
        }
      }
      loadAverages.push(os.loadavg());
    }
  } finally {
    for (const agent of agents.values()) agent.destroy();
    for (const system of systems) await system.stop();
  }
  const results = systems.flatMap((system) => concurrencies.map((clients) => combine(system.name, clients, samples.get(`${system.name}/${clients}`) ?? [])));

  console.log(`\nwrite: 3 nodes each, ${options.valueBytes}-byte values, ${options.rounds} × ${options.durationS} s per level (each after ${options.warmupS} s warm-up), levels alternating between the systems, writes to the leader`);
  console.log(
    `idle CPU of the three server processes together (${idleMs / 1000} s, no load): ${Object.entries(idleCpuPercent)
      .map(([name, percent]) => `${name} ${percent === null ? '?' : round(percent, 1)}%`)
      .join(', ')}`,
  );
  console.log(`load average (1 min) before and after each round: ${loadAverages.map((load) => round(load[0] ?? 0, 2)).join(', ')}\n`);
  printTable(
    ['system', 'clients', 'writes', 'failed', 'ops/s', 'p50 ms', 'p99 ms', 'max ms', 'server cpu µs/write', 'leader fsyncs/write', 'follower fsyncs/write', 'fsync mean ms'],
    results.map((result) => [
      result.system,
      result.clients,
      result.ok,
      result.failed,
      Math.round(result.opsPerSecond),
      round(result.p50Ms, 2),
      round(result.p99Ms, 2),
      round(result.maxMs, 1),
      result.serverCpuUsPerWrite === null ? '-' : Math.round(result.serverCpuUsPerWrite),
      result.fsyncsPerWrite === null ? '-' : round(result.fsyncsPerWrite, 2),
      result.followerFsyncsPerWrite === null ? '-' : round(result.followerFsyncsPerWrite, 2),
      result.fsyncMeanMs === null ? '-' : round(result.fsyncMeanMs, 2),
    ]),
  );
  const ratios = concurrencies.map((clients) => {
    const ours = results.find((result) => result.system === 'quorumscope' && result.clients === clients);
    const theirs = results.find((result) => result.system === 'etcd' && result.clients === clients);
    return {
      clients,
      throughputRatio: ours && theirs ? ours.opsPerSecond / theirs.opsPerSecond : Number.NaN,
      p50Ratio: ours && theirs ? ours.p50Ms / theirs.p50Ms : Number.NaN,
      p99Ratio: ours && theirs ? ours.p99Ms / theirs.p99Ms : Number.NaN,
    };
  });
  console.log('\nquorumscope / etcd\n');
  printTable(
    ['clients', 'throughput', 'p50', 'p99'],
    ratios.map((ratio) => [ratio.clients, round(ratio.throughputRatio, 2), round(ratio.p50Ratio, 2), round(ratio.p99Ratio, 2)]),
  );
  const at64 = ratios.find((ratio) => ratio.clients === 64)?.throughputRatio ?? Number.NaN;
  console.log(`\naim (≥ etcd throughput at 64 clients): ${at64 >= 1 ? 'met' : 'MISSED'} (${round(at64, 2)}×)`);
  writeResult('write', { options, concurrencies, loadAverages, idleCpuPercent, results, ratios, aimMet: at64 >= 1 });
}

await main();

/**
 * Planned leadership transfer. Per trial: a background writer sends a steady
 * stream of writes (one at a time, a pause of --writer-interval-ms between
 * them) to the node that leads when the trial starts; the benchmark asks that
 * leader to hand over to another node and measures the time from the request
 * until the NEW leader has served a write (the transfer's answer, then a
 * write sent to the target, retried every 2 ms). It also counts the
 * background writes that failed during the trial. The same run does it for
 * Quorumscope (`POST /v1/admin/transfer-leadership`, which answers once the
 * target leads) and etcd 3.4 (the gateway's `/v3/maintenance/transfer-leadership`,
 * the API behind `etcdctl move-leader`, which also answers once it is done).
 *
 *   npm run bench -- transfer [--trials N] [--writer-interval-ms N]
 */
import type http from 'node:http';
import { createAgent, sleep } from './lib/http';
import { parseArgs, printTable, round, writeResult } from './lib/report';
import { summarise } from './lib/stats';
import { startEtcd, startQuorumscope, type BenchSystem } from './lib/systems';

const options = parseArgs({ trials: 20, writerIntervalMs: 2 });
const aimMedianMs = 50;
const requestTimeoutMs = 5_000;
const probeIntervalMs = 2;
const probeAttemptsMax = 2_500;
const writerLeadInMs = 100;
const writerTailMs = 200;
const settleBetweenTrialsMs = 300;

interface Trial {
  from: string;
  to: string;
  /** Null when the transfer succeeded; else the system's answer (the trial is then not timed). */
  refusal: string | null;
  /** The first failed writes to the new leader after the transfer answered, for diagnosis. */
  probeFailures: string[];
  transferMs: number;
  answerMs: number;
  backgroundWrites: number;
  backgroundFailures: number;
  /** The longest time between two successful background writes: the outage a client saw. */
  backgroundGapMsMax: number;
  failureStatuses: string[];
}

function startWriter(system: BenchSystem, agent: http.Agent, target: string, trial: number) {
  let running = true;
  let writes = 0;
  let failures = 0;
  let lastSuccessMs = performance.now();
  let gapMsMax = 0;
  const failureStatuses: string[] = [];
  const done = (async () => {
    for (let sent = 0; running && sent < 100_000; sent += 1) {
      const answer = await system.put(agent, target, `transfer/background/${sent % 10}`, `t${trial}-${sent}`, requestTimeoutMs);
      writes += 1;
      if (answer.status === 200) {
        gapMsMax = Math.max(gapMsMax, performance.now() - lastSuccessMs);
        lastSuccessMs = performance.now();
      } else {
        failures += 1;
        if (failureStatuses.length < 5) failureStatuses.push(`${answer.status} ${answer.text.slice(0, 120)}`);
      }
      await sleep(options.writerIntervalMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return { writes, failures, gapMsMax, failureStatuses };
    },
  };
}

async function runTrial(system: BenchSystem, agent: http.Agent, trial: number): Promise<Trial> {
  const from = await system.waitForLeader(agent, 20_000);
  const others = system.ids().filter((id) => id !== from);
  const to = others[trial % others.length] as string;
  const writer = startWriter(system, agent, from, trial);
  await sleep(writerLeadInMs);
  const startedMs = performance.now();
  const answer = await system.transfer(agent, from, to, requestTimeoutMs);
  const answerMs = performance.now() - startedMs;
  if (answer.status !== 200) {
    await sleep(writerTailMs);
    const background = await writer.stop();
    return {
      from,
      to,
      refusal: `${answer.status} ${answer.text.slice(0, 200)}`,
      probeFailures: [],
      transferMs: Number.NaN,
      answerMs,
      backgroundWrites: background.writes,
      backgroundFailures: background.failures,
      backgroundGapMsMax: background.gapMsMax,
      failureStatuses: background.failureStatuses,
    };
  }
  let servedMs: number | null = null;
  const probeFailures: string[] = [];
  for (let attempt = 0; attempt < probeAttemptsMax && servedMs === null; attempt += 1) {
    const probe = await system.put(agent, to, `transfer/probe/${trial}`, `served-${attempt}`, requestTimeoutMs);
    if (probe.status === 200) servedMs = performance.now() - startedMs;
    else {
      if (probeFailures.length < 3) probeFailures.push(`${round(performance.now() - startedMs, 1)} ms: ${probe.status} ${probe.text.slice(0, 160)}`);
      await sleep(probeIntervalMs);
    }
  }
  await sleep(writerTailMs);
  const background = await writer.stop();
  if (servedMs === null) throw new Error(`${system.name}: ${to} served no write after the transfer`);
  const leaderNow = await system.leader(agent);
  if (leaderNow !== to) console.warn(`warning: ${system.name} trial ${trial + 1}: ${leaderNow ?? 'nobody'} leads, not ${to}`);
  return {
    from,
    to,
    refusal: null,
    probeFailures,
    transferMs: servedMs,
    answerMs,
    backgroundWrites: background.writes,
    backgroundFailures: background.failures,
    backgroundGapMsMax: background.gapMsMax,
    failureStatuses: background.failureStatuses,
  };
}

async function measure(system: BenchSystem): Promise<Trial[]> {
  const agent = createAgent();
  const trials: Trial[] = [];
  try {
    for (let trial = 0; trial < options.trials; trial += 1) {
      const result = await runTrial(system, agent, trial);
      trials.push(result);
      if (result.refusal !== null) {
        console.log(`${system.name} trial ${trial + 1}: ${result.from} → ${result.to} FAILED after ${round(result.answerMs, 1)} ms: ${result.refusal}`);
        await sleep(settleBetweenTrialsMs);
        continue;
      }
      console.log(
        `${system.name} trial ${trial + 1}: ${result.from} → ${result.to} answered in ${round(result.answerMs, 1)} ms, ` +
          `new leader served a write after ${round(result.transferMs, 1)} ms; background ${result.backgroundFailures}/${result.backgroundWrites} failed` +
          (result.failureStatuses.length > 0 ? ` (${result.failureStatuses[0]})` : '') +
          (result.probeFailures.length > 0 ? `; first failed write to the new leader at ${result.probeFailures[0]}` : ''),
      );
      await sleep(settleBetweenTrialsMs);
    }
  } finally {
    agent.destroy();
  }
  return trials;
}

async function main(): Promise<void> {
  const trials: Record<string, Trial[]> = {};
  const quorumscope = await startQuorumscope({ nodes: 3 });
  try {
    trials.quorumscope = await measure(quorumscope);
  } finally {
    await quorumscope.stop();
  }
  const etcd = await startEtcd({ nodes: 3 });
  try {
    trials.etcd = await measure(etcd);
  } finally {
    await etcd.stop();
  }
  const summaries = Object.entries(trials).map(([system, list]) => ({
    system,
    transfersFailed: list.filter((trial) => trial.refusal !== null).length,
    served: summarise(list.filter((trial) => trial.refusal === null).map((trial) => trial.transferMs)),
    answered: summarise(list.filter((trial) => trial.refusal === null).map((trial) => trial.answerMs)),
    backgroundWrites: list.reduce((sum, trial) => sum + trial.backgroundWrites, 0),
    backgroundFailures: list.reduce((sum, trial) => sum + trial.backgroundFailures, 0),
    trialsWithFailures: list.filter((trial) => trial.backgroundFailures > 0).length,
    backgroundGap: summarise(list.map((trial) => trial.backgroundGapMsMax)),
  }));
  console.log(`\ntransfer: planned leadership transfer, time until the new leader served a write; background writer to the old leader\n`);
  printTable(
    ['system', 'trials', 'transfers failed', 'median ms', 'p90 ms', 'max ms', 'answer median ms', 'bg writes', 'bg failed', 'trials with failures', 'bg gap median ms', 'bg gap max ms'],
    summaries.map((summary) => [
      summary.system,
      summary.served.count + summary.transfersFailed,
      summary.transfersFailed,
      round(summary.served.medianMs),
      round(summary.served.p90Ms),
      round(summary.served.maxMs),
      round(summary.answered.medianMs),
      summary.backgroundWrites,
      summary.backgroundFailures,
      summary.trialsWithFailures,
      round(summary.backgroundGap.medianMs),
      round(summary.backgroundGap.maxMs),
    ]),
  );
  const ours = summaries.find((summary) => summary.system === 'quorumscope');
  const theirs = summaries.find((summary) => summary.system === 'etcd');
  const ratio = ours && theirs ? ours.served.medianMs / theirs.served.medianMs : Number.NaN;
  const aimMet = ours !== undefined && ours.served.medianMs <= aimMedianMs && ours.backgroundFailures === 0 && ours.transfersFailed === 0;
  console.log(`\nmedian quorumscope / etcd = ${round(ratio, 2)}; aim (median ≤ ${aimMedianMs} ms, no failed write): ${aimMet ? 'met' : 'MISSED'}`);
  writeResult('transfer', { options, summaries, trials, medianRatio: ratio, aimMet });
}

await main();

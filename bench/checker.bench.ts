/**
 * Linearizability checker time on a history of about 10,000 operations over
 * 16 keys. The histories are REAL: each comes from one simulated run of a
 * 3-node Raft cluster (16 clients, 16 keys) long enough to yield at least
 * `--operations` operations, kept whole (cutting a history at a time can
 * orphan a read from the write it saw). Two runs are checked: `steady` (no
 * faults, every operation completes) and `crashes` (nodes crash and restart,
 * so some operations are indeterminate and the search has more orders to try).
 * Only `checkLinearizability` is timed.
 *
 *   npm run bench -- checker [--operations N] [--trials N] [--seed N]
 */
import { raftFactory } from '../src/agent/consensus/raft';
import type { KvOperation, KvOutput } from '../src/agent/kv';
import {
  checkLinearizability,
  isIndeterminate,
  kvRegisterModel,
  runSimulation,
  type HistoryOperation,
  type ScenarioFamily,
} from '../src/sim';
import { parseArgs, printTable, quantile, round, writeResult } from './lib/report';

const options = parseArgs({ operations: 10_000, trials: 5, seed: 1, keys: 16, clients: 16 });
const aimMs = 1_000;
const families: readonly ScenarioFamily[] = ['steady', 'crashes'];
const growthAttemptsMax = 6;

type KvHistory = readonly HistoryOperation<KvOperation, KvOutput>[];

/** Runs longer and longer simulations until the history holds enough operations. */
function historyOf(family: ScenarioFamily): { history: KvHistory; faultPhaseMs: number; generationMs: number } {
  let faultPhaseMs = 10_000;
  for (let attempt = 0; attempt < growthAttemptsMax; attempt += 1) {
    const started = performance.now();
    const run = runSimulation({
      factory: raftFactory,
      engineName: 'raft',
      family,
      seed: options.seed,
      nodes: 3,
      keys: options.keys,
      clients: options.clients,
      faultPhaseMs,
      stepsMax: 10_000_000,
      keepHistory: true,
    });
    if (!run.ok || run.history === null) throw new Error(`the simulated run failed: ${run.replay}`);
    if (run.history.length >= options.operations) return { history: run.history, faultPhaseMs, generationMs: performance.now() - started };
    faultPhaseMs = Math.ceil((faultPhaseMs * options.operations * 1.1) / Math.max(1, run.history.length));
  }
  throw new Error(`no ${family} history of ${options.operations} operations after ${growthAttemptsMax} attempts`);
}

/** Operations whose interval overlaps an earlier one on the same key: what gives the search choices. */
function overlappingOf(history: KvHistory): number {
  const byKey = new Map<string, HistoryOperation<KvOperation, KvOutput>[]>();
  for (const operation of history) {
    const operations = byKey.get(operation.key);
    if (operations === undefined) byKey.set(operation.key, [operation]);
    else operations.push(operation);
  }
  let overlapping = 0;
  for (const operations of byKey.values()) {
    let latestReturnMs = Number.NEGATIVE_INFINITY;
    for (const operation of [...operations].sort((left, right) => left.callMs - right.callMs)) {
      if (operation.callMs < latestReturnMs) overlapping += 1;
      latestReturnMs = Math.max(latestReturnMs, operation.returnMs);
    }
  }
  return overlapping;
}

const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
for (const family of families) {
  const { history, faultPhaseMs, generationMs } = historyOf(family);
  const keys = new Set(history.map((operation) => operation.key)).size;
  const indeterminate = history.filter(isIndeterminate).length;
  const overlapping = overlappingOf(history);
  const writes = history.filter((operation) => operation.input.type !== 'get').length;
  checkLinearizability(history, kvRegisterModel); // Warms up the JIT.
  const timesMs: number[] = [];
  let outcome = '';
  for (let trial = 0; trial < options.trials; trial += 1) {
    const started = performance.now();
    const verdict = checkLinearizability(history, kvRegisterModel);
    timesMs.push(performance.now() - started);
    outcome = verdict.outcome;
  }
  const medianMs = quantile(timesMs, 0.5);
  rows.push([family, history.length, keys, writes, overlapping, indeterminate, outcome, round(medianMs, 1), round(Math.max(...timesMs), 1), medianMs < aimMs ? 'met' : 'MISSED']);
  results.push({ family, operations: history.length, keys, writes, overlapping, indeterminate, outcome, faultPhaseMs, generationMs, timesMs, medianMs, aimMet: medianMs < aimMs });
}

console.log(`checker: Wing–Gong/Lowe search on simulated Raft KV histories (seed ${options.seed}, ${options.clients} clients), ${options.trials} trials each\n`);
printTable(['history', 'operations', 'keys', 'writes', 'overlapping', 'indeterminate', 'verdict', 'median ms', 'max ms', `aim < ${aimMs} ms`], rows);
writeResult('checker', { options, source: 'simulated Raft KV runs (runSimulation keepHistory)', aimMs, results });

/**
 * Simulator speed: seeds per second for each scenario family, with the
 * simulator's defaults (3 to 5 Raft nodes drawn from the seed, 4 clients,
 * 3 keys, 1.5 s of faults then 1 s to settle, invariants checked after every
 * step, the client history checked for linearizability at the end).
 *
 *   npm run bench -- sim-seeds [--seeds N] [--first-seed N]
 */
import { raftFactory } from '../src/agent/consensus/raft';
import { runSimSweep, scenarioFamilies, type SimSweepFamilySummary } from '../src/sim';
import { parseArgs, printTable, round, writeResult } from './lib/report';

const options = parseArgs({ seeds: 100, firstSeed: 1 });

interface FamilyResult extends SimSweepFamilySummary {
  wallMs: number;
  cpuMs: number;
  seedsPerSecond: number;
  seedsPerCpuSecond: number;
  stepsPerSecond: number;
}

// One short sweep warms up the JIT before anything is timed.
runSimSweep({ factory: raftFactory, engineName: 'raft', seeds: 3, firstSeed: 1_000_000 });

const results: FamilyResult[] = [];
for (const family of scenarioFamilies) {
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  const sweep = runSimSweep({ factory: raftFactory, engineName: 'raft', families: [family], seeds: options.seeds, firstSeed: options.firstSeed });
  const wallMs = performance.now() - wallStart;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const summary = sweep.families[0] as SimSweepFamilySummary;
  results.push({
    ...summary,
    wallMs,
    cpuMs,
    seedsPerSecond: (summary.runs / wallMs) * 1000,
    seedsPerCpuSecond: (summary.runs / cpuMs) * 1000,
    stepsPerSecond: (summary.steps / wallMs) * 1000,
  });
  for (const failure of sweep.failures.slice(0, 3)) console.log(`failure: ${failure.replay}: ${failure.violation?.kind ?? ''}`);
}

console.log(`sim-seeds: ${options.seeds} seeds per family from seed ${options.firstSeed}, Raft, simulator defaults\n`);
printTable(
  ['family', 'seeds', 'failures', 'wall s', 'seeds/s', 'seeds/cpu-s', 'steps/seed', 'steps/s', 'ops/seed'],
  results.map((result) => [
    result.family,
    result.runs,
    result.failures,
    round(result.wallMs / 1000, 2),
    round(result.seedsPerSecond),
    round(result.seedsPerCpuSecond),
    Math.round(result.steps / result.runs),
    Math.round(result.stepsPerSecond),
    Math.round(result.operations / result.runs),
  ]),
);
writeResult('sim-seeds', { options, families: results });

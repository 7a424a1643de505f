/**
 * `quorumscope sim`: runs simulator sweeps from the command line. The only
 * file under src/sim that touches `process`, the terminal or the wall clock
 * (for the seeds-per-second figure); the core stays pure.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { EngineFactory, EngineMessage } from '../agent/consensus/engine';
import { scenarioFamilies, type ScenarioFamily } from './scenarios';
import type { SimRunResult } from './simulator';
import { runSimSweep, type SimSweepResult } from './sweep';

export const simEngineNames = ['raft'] as const;
export type SimEngineName = (typeof simEngineNames)[number];

/** Engines load lazily so that `quorumscope --help` stays fast. */
async function loadEngine(name: SimEngineName): Promise<EngineFactory<EngineMessage>> {
  switch (name) {
    case 'raft':
      return (await import('../agent/consensus/raft/index')).raftFactory as unknown as EngineFactory<EngineMessage>;
  }
}

interface SimFlags {
  engine: SimEngineName;
  family: ScenarioFamily | 'all';
  seeds: number;
  seed?: number;
  firstSeed: number;
  nodes?: number;
  steps?: number;
  failFast: boolean;
}

function positiveInteger(what: string, minimum = 1): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < minimum) throw new InvalidArgumentError(`expected ${what}: an integer ≥ ${minimum}`);
    return parsed;
  };
}

const progressBarWidthChars = 30;

function drawProgress(done: number, total: number, failures: number): void {
  const filled = Math.round((done / total) * progressBarWidthChars);
  const bar = '█'.repeat(filled) + '░'.repeat(progressBarWidthChars - filled);
  process.stderr.write(`\r${bar} ${done}/${total} seeds, ${failures} failing`);
}

function describeFailure(result: SimRunResult): string {
  const violation = result.violation;
  if (violation === null) return '';
  return [
    `✗ ${result.family} seed ${result.seed}: ${violation.kind} at ${violation.atMs} ms (step ${violation.step})`,
    `  ${violation.message.split('\n').join('\n  ')}`,
    `  replay: ${result.replay}`,
  ].join('\n');
}

function printSummary(sweep: SimSweepResult, elapsedMs: number): void {
  for (const family of sweep.families) {
    process.stdout.write(
      `${family.family.padEnd(11)} ${family.runs} seeds, ${family.failures} failing, ${family.steps} steps, ${family.operations} client operations\n`,
    );
  }
  for (const failure of sweep.failures) process.stdout.write(`${describeFailure(failure)}\n`);
  const seedsPerSecond = sweep.runs / Math.max(elapsedMs / 1000, 1e-3);
  process.stdout.write(
    `${sweep.failureCount === 0 ? 'ok' : 'FAILED'}: ${sweep.runs} seeds, ${sweep.failureCount} failing, ` +
      `${(elapsedMs / 1000).toFixed(1)} s (${seedsPerSecond.toFixed(1)} seeds/s)\n`,
  );
}

async function runSimCommand(flags: SimFlags): Promise<void> {
  const factory = await loadEngine(flags.engine);
  const families = flags.family === 'all' ? scenarioFamilies : [flags.family];
  const showProgress = process.stderr.isTTY === true && flags.seed === undefined;
  const startedMs = performance.now();
  let failures = 0;
  const sweep = runSimSweep({
    factory,
    engineName: flags.engine,
    families,
    firstSeed: flags.seed ?? flags.firstSeed,
    seeds: flags.seed === undefined ? flags.seeds : 1,
    nodes: flags.nodes,
    stepsMax: flags.steps,
    stopOnFailure: flags.failFast,
    onResult: (result, done, total) => {
      if (!result.ok) failures += 1;
      if (showProgress) drawProgress(done, total, failures);
      if (flags.seed !== undefined) {
        process.stdout.write(`${result.family} seed ${result.seed}: ${result.ok ? 'ok' : 'FAILED'}, trace ${result.traceHash}, ${JSON.stringify(result.stats)}\n`);
      }
    },
  });
  if (showProgress) process.stderr.write('\n');
  printSummary(sweep, performance.now() - startedMs);
  if (sweep.failureCount > 0) process.exitCode = 1;
}

/** The `sim` command, ready to add to a program. */
export function simCommand(): Command {
  return new Command('sim')
    .description('Run the deterministic simulator: seeded faults, safety invariants after every step, linearizability of client histories')
    .addOption(new Option('--engine <name>', 'consensus engine').choices(simEngineNames).default('raft'))
    .addOption(new Option('--family <family>', 'scenario family').choices([...scenarioFamilies, 'all']).default('all'))
    .option('--seeds <count>', 'seeds per family', positiveInteger('a seed count'), 100)
    .option('--seed <seed>', 'run (replay) this one seed', positiveInteger('a seed', 0))
    .option('--first-seed <seed>', 'first seed of a sweep', positiveInteger('a seed', 0), 1)
    .option('--nodes <count>', 'initial voters (default: 3 to 5, drawn from the seed)', positiveInteger('a node count'))
    .option('--steps <count>', 'cap on scheduler steps per seed', positiveInteger('a step count'))
    .option('--fail-fast', 'stop at the first failing seed', false)
    .action(async (flags: SimFlags) => runSimCommand(flags));
}

export function registerSimCommand(program: Command): void {
  program.addCommand(simCommand());
}

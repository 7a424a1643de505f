/**
 * Runs many seeds of one or more scenario families. Pure like the rest of the
 * core: timing and printing belong to the caller (the CLI).
 */
import type { EngineMessage } from '../agent/consensus/engine';
import { runSimulation, type SimRunOptions, type SimRunResult } from './simulator';
import { scenarioFamilies, type ScenarioFamily } from './scenarios';

/** A sweep keeps at most this many failures in its result; it counts the rest. */
export const sweepFailuresKeptMax = 100;

export interface SimSweepOptions<M extends EngineMessage> extends Omit<SimRunOptions<M>, 'family' | 'seed' | 'keepHistory'> {
  /** Families to run; all of them when absent. */
  readonly families?: readonly ScenarioFamily[];
  /** The first seed of each family. */
  readonly firstSeed?: number;
  /** Seeds per family. */
  readonly seeds: number;
  /** Stop at the first failing seed. */
  readonly stopOnFailure?: boolean;
  /** Called after each seed (the CLI draws its progress bar from it). */
  readonly onResult?: (result: SimRunResult, done: number, total: number) => void;
}

export interface SimSweepFamilySummary {
  readonly family: ScenarioFamily;
  readonly runs: number;
  readonly failures: number;
  readonly steps: number;
  readonly operations: number;
}

export interface SimSweepResult {
  readonly runs: number;
  readonly failureCount: number;
  /** The first failures, at most `sweepFailuresKeptMax`, each with its replay command. */
  readonly failures: readonly SimRunResult[];
  readonly families: readonly SimSweepFamilySummary[];
}

export function runSimSweep<M extends EngineMessage>(options: SimSweepOptions<M>): SimSweepResult {
  const families = options.families ?? scenarioFamilies;
  const firstSeed = options.firstSeed ?? 1;
  const total = families.length * options.seeds;
  const failures: SimRunResult[] = [];
  const summaries: SimSweepFamilySummary[] = [];
  let failureCount = 0;
  let done = 0;
  for (const family of families) {
    const summary = { family, runs: 0, failures: 0, steps: 0, operations: 0 };
    summaries.push(summary);
    for (let seed = firstSeed; seed < firstSeed + options.seeds; seed += 1) {
      const result = runSimulation({ ...options, family, seed });
      done += 1;
      summary.runs += 1;
      summary.steps += result.stats.steps;
      summary.operations += result.stats.operations;
      if (!result.ok) {
        summary.failures += 1;
        failureCount += 1;
        if (failures.length < sweepFailuresKeptMax) failures.push(result);
      }
      options.onResult?.(result, done, total);
      if (!result.ok && options.stopOnFailure === true) return { runs: done, failureCount, failures, families: summaries };
    }
  }
  return { runs: done, failureCount, failures, families: summaries };
}

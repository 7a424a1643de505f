/**
 * The deterministic simulator's public surface. The CLI command lives in
 * `./cli` (the one file that touches `process`) and is imported from there.
 */
export { runSimulation, replayCommand, simDefaults, type SimRunOptions, type SimRunResult, type SimStats, type EngineTuning } from './simulator';
export { runSimSweep, sweepFailuresKeptMax, type SimSweepOptions, type SimSweepResult, type SimSweepFamilySummary } from './sweep';
export { scenarioFamilies, drawScenario, type ScenarioFamily, type FaultAction, type Scenario } from './scenarios';
export { SafetyMonitor, fingerprintOf, isAtLeastAsUpToDate, type InvariantName, type InvariantViolation, type LogView, type EntryFingerprint } from './invariants';
export { SimStorage } from './storage';
export { SimNetwork, calmNetworkProfile, type NetworkProfile } from './network';
export { EventQueue } from './scheduler';
export type { ReadMode } from './node';
export type { SimViolation, ViolationKind } from './violation';
export * from './linearizability';

import { quantile } from './report';

export interface Summary {
  count: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
  minMs: number;
}

export function summarise(samplesMs: readonly number[]): Summary {
  return {
    count: samplesMs.length,
    medianMs: quantile(samplesMs, 0.5),
    p90Ms: quantile(samplesMs, 0.9),
    maxMs: samplesMs.length === 0 ? Number.NaN : Math.max(...samplesMs),
    minMs: samplesMs.length === 0 ? Number.NaN : Math.min(...samplesMs),
  };
}

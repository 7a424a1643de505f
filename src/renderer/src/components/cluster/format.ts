import { formatDurationMs, type DisplayRole, type Health } from '../../../../shared/model';

/** Presentation helpers shared by the cluster components: plain functions, no state. */

export interface RoleLook {
  /** A shape per role, so a role reads without colour. */
  glyph: string;
  label: string;
}

export const roleLooks: Record<DisplayRole, RoleLook> = {
  leader: { glyph: '★', label: 'leader' },
  follower: { glyph: '●', label: 'follower' },
  candidate: { glyph: '◆', label: 'candidate' },
  looking: { glyph: '◇', label: 'looking' },
  learner: { glyph: '○', label: 'learner' },
  observer: { glyph: '◎', label: 'observer' },
  offline: { glyph: '✕', label: 'offline' },
  unknown: { glyph: '?', label: 'never seen' },
};

export const healthLooks: Record<Health, { glyph: string; label: string }> = {
  healthy: { glyph: '✓', label: 'Healthy' },
  degraded: { glyph: '▲', label: 'Degraded' },
  'no-leader': { glyph: '✕', label: 'No leader' },
  'split-brain': { glyph: '⚠', label: 'Split brain' },
  unknown: { glyph: '?', label: 'Unknown' },
};

/** '12 s ago', relative to the model's time rather than the screen's clock, so playback reads the same. */
export function formatAgo(nowMs: number, atMs: number | null): string {
  if (atMs === null) return 'never';
  const ageMs = Math.max(0, nowMs - atMs);
  return ageMs < 1_000 ? 'just now' : `${formatDurationMs(ageMs)} ago`;
}

/** Wall-clock time of day for the timeline, in the operator's locale. */
export function formatClock(atMs: number): string {
  return new Date(atMs).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const byteUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < byteUnits.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${byteUnits[unit]}`;
}

export function formatCount(value: number | null): string {
  return value === null ? '—' : value.toLocaleString();
}

export function formatTolerance(tolerable: number | null): string {
  if (tolerable === null) return 'unknown (no leader)';
  if (tolerable < 0) return 'quorum lost';
  return `can lose ${tolerable} more node${tolerable === 1 ? '' : 's'}`;
}

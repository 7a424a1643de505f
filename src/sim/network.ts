/**
 * The simulated network between engines: per-message delay drawn from a
 * seeded distribution (which also reorders), loss, duplication, and
 * partitions given as a set of blocked directed links, so a partition may be
 * symmetric or one-way.
 */
import type { NodeId } from '../shared/protocol';
import type { SeededRandom } from '../shared/random';

export interface NetworkProfile {
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  /** Probability that a message takes the slow path (a long tail, which reorders). */
  readonly slowProbability: number;
  readonly slowDelayMsMax: number;
  readonly lossProbability: number;
  readonly duplicateProbability: number;
}

export const calmNetworkProfile: NetworkProfile = {
  delayMsMin: 1,
  delayMsMax: 4,
  slowProbability: 0.01,
  slowDelayMsMax: 20,
  lossProbability: 0,
  duplicateProbability: 0,
};

/** What happens to one message sent on a link: no copy (lost), one, or two (duplicated). */
export type Deliveries = readonly number[];

export class SimNetwork {
  private readonly blockedLinks = new Set<string>();

  constructor(
    private readonly profile: NetworkProfile,
    private readonly random: SeededRandom,
  ) {}

  /** Delays (ms) of the copies of a message from `from` to `to` that arrive. */
  route(from: NodeId, to: NodeId): Deliveries {
    if (this.isBlocked(from, to)) return [];
    if (this.random.chance(this.profile.lossProbability)) return [];
    const first = this.drawDelayMs();
    if (!this.random.chance(this.profile.duplicateProbability)) return [first];
    return [first, this.drawDelayMs()];
  }

  /** The delay of a client request or answer: client links are never lost but do see delay. */
  clientDelayMs(): number {
    return this.drawDelayMs();
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blockedLinks.has(linkKey(from, to));
  }

  /** Cuts every link between the groups, both ways. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (const [groupIndex, group] of groups.entries()) {
      for (const other of groups.slice(groupIndex + 1)) {
        for (const left of group) {
          for (const right of other) {
            this.blockedLinks.add(linkKey(left, right));
            this.blockedLinks.add(linkKey(right, left));
          }
        }
      }
    }
  }

  /** Cuts the links from `from` to each of `to`, leaving the reverse direction up. */
  blockOneWay(from: NodeId, to: readonly NodeId[]): void {
    for (const target of to) if (target !== from) this.blockedLinks.add(linkKey(from, target));
  }

  heal(): void {
    this.blockedLinks.clear();
  }

  get blockedLinkCount(): number {
    return this.blockedLinks.size;
  }

  private drawDelayMs(): number {
    if (this.random.chance(this.profile.slowProbability)) {
      return this.random.int(this.profile.delayMsMax, this.profile.slowDelayMsMax);
    }
    return this.random.int(this.profile.delayMsMin, this.profile.delayMsMax);
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

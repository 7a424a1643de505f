/**
 * The simulator's single event queue: a binary min-heap ordered by virtual
 * time, ties broken by insertion order, so one seed always yields one order.
 */

/** A run that queues more events than this has a runaway feedback loop; it stops with an error. */
export const eventsQueuedMaxDefault = 500_000;

interface Slot<T> {
  readonly timeMs: number;
  readonly sequence: number;
  readonly event: T;
}

export class EventQueue<T> {
  private readonly heap: Slot<T>[] = [];
  private sequence = 0;

  constructor(private readonly eventsQueuedMax = eventsQueuedMaxDefault) {}

  get size(): number {
    return this.heap.length;
  }

  push(timeMs: number, event: T): void {
    if (!Number.isFinite(timeMs)) throw new RangeError(`EventQueue: event time ${timeMs} is not finite`);
    if (this.heap.length >= this.eventsQueuedMax) {
      throw new RangeError(`EventQueue: more than ${this.eventsQueuedMax} events queued`);
    }
    this.heap.push({ timeMs, sequence: this.sequence, event });
    this.sequence += 1;
    this.siftUp(this.heap.length - 1);
  }

  /** The earliest event, or null when the queue is empty. */
  pop(): { timeMs: number; event: T } | null {
    const top = this.heap[0];
    if (top === undefined) return null;
    const last = this.heap.pop() as Slot<T>;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return { timeMs: top.timeMs, event: top.event };
  }

  peekTimeMs(): number | null {
    return this.heap[0]?.timeMs ?? null;
  }

  private before(left: number, right: number): boolean {
    const a = this.heap[left] as Slot<T>;
    const b = this.heap[right] as Slot<T>;
    return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.sequence < b.sequence);
  }

  private swap(left: number, right: number): void {
    const a = this.heap[left] as Slot<T>;
    this.heap[left] = this.heap[right] as Slot<T>;
    this.heap[right] = a;
  }

  private siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(index, parent)) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(start: number): void {
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < this.heap.length && this.before(left, smallest)) smallest = left;
      if (right < this.heap.length && this.before(right, smallest)) smallest = right;
      if (smallest === index) return;
      this.swap(index, smallest);
      index = smallest;
    }
  }
}

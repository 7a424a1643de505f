import { createClusterModel, reduce, summarizeForRenderer } from '../src/shared/model';
import { syntheticMessages } from '../bench/lib/synthetic-cluster';
import { pack } from 'msgpackr';
import { deflateRawSync } from 'node:zlib';
let model = createClusterModel();
const msgs = [...syntheticMessages({ nodes: 50, sampleIntervalMs: 100, startMs: 1_700_000_000_000, seed: 1 }, 360_000)];
console.log('messages', msgs.length);
let t = performance.now();
let i = 0;
for (const m of msgs) { model = reduce(model, m); i++; if (i === 100000) break; }
console.log('reduce us/msg', ((performance.now() - t) * 1000 / 100000).toFixed(1));
t = performance.now();
for (let k = 0; k < 100; k++) summarizeForRenderer(model);
console.log('summarize ms', ((performance.now() - t) / 100).toFixed(2));
const packed = pack(model);
console.log('model msgpack bytes', packed.length, 'deflated', deflateRawSync(packed).length, 'json', JSON.stringify(model).length);
const s = msgs.find((m) => m.kind === 'sample' && m.sample.status.role === 'follower')!;
const l = msgs.find((m) => m.kind === 'sample' && m.sample.status.role === 'leader')!;
console.log('follower sample', pack(s).length, 'leader sample', pack(l).length);

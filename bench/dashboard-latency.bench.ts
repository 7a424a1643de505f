/**
 * Event-to-pixel latency: from a (simulated) agent emitting an event to the
 * dashboard's DOM showing it, measured in Chromium against web mode.
 * Usage: npm run bench -- dashboard-latency [--events N]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { connectProfiles } from '../test/support/bridge-client';
import { startFakeFleet } from '../test/support/fake-agents';
import { launchChromium, percentile, startWebProcess } from './dashboard/web';

const eventsCount = Number(process.argv[process.argv.indexOf('--events') + 1]) || 200;
const eventSpacingMs = 100;

const fleet = await startFakeFleet({ clusters: 1, nodesPerCluster: 3, token: 'bench-token-0123456789' });
const web = await startWebProcess();
const browser = await launchChromium();
try {
  const cluster = fleet.clusters[0];
  if (cluster === undefined) throw new Error('no fake cluster');
  await connectProfiles(web.url, [{ name: 'latency', endpoints: cluster.nodes.map((node) => node.endpoint), token: fleet.token }]);
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(web.url);
  await page.getByTestId('leader-name').first().waitFor();
  // Strings, not closures: the page has no Node types, and tsx would wrap named functions in a helper the page lacks.
  // Only added nodes are read (textContent, no layout), so measuring costs the page little.
  await page.evaluate(`(() => {
    const seen = {};
    window.seen = seen;
    new MutationObserver((records) => {
      const now = Date.now();
      for (const record of records) {
        const texts = record.type === 'characterData' ? [record.target.textContent || ''] : [...record.addedNodes].map((node) => node.textContent || '');
        for (const text of texts) for (const match of text.matchAll(/latency-probe-(\\d+)/g)) if (seen[match[1]] === undefined) seen[match[1]] = now;
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  })()`);
  const emitted: number[] = [];
  const source = cluster.nodes[0];
  for (let i = 0; i < eventsCount; i += 1) {
    emitted[i] = Date.now();
    source?.emitEvent({ type: 'drill:started', drill: 'slow-network', detail: `latency-probe-${i}` });
    await new Promise((resolve) => setTimeout(resolve, eventSpacingMs));
  }
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const seen = (await page.evaluate('window.seen')) as Record<string, number>;
  const latencies = emitted.map((at, i) => (seen[String(i)] ?? Number.NaN) - at).filter((value) => Number.isFinite(value));
  const result = {
    benchmark: 'dashboard-latency',
    date: new Date().toISOString(),
    events: eventsCount,
    shown: latencies.length,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    maxMs: Math.max(...latencies),
    aimP95Ms: 150,
  };
  console.table([result]);
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/dashboard-latency.json', JSON.stringify(result, null, 2));
} finally {
  await browser.close();
  await web.stop();
  await fleet.close();
}

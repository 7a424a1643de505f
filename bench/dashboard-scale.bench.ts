/**
 * Scale: 200 simulated nodes (40 clusters of 5) streaming status at 10 Hz
 * into web mode, with the dashboard open in Chromium. Measures renderer frame
 * time, hub CPU and hub memory over the run.
 * Usage: npm run bench -- dashboard-scale [--duration-s S] [--clusters C]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { connectProfiles } from '../test/support/bridge-client';
import { startFakeFleet } from '../test/support/fake-agents';
import { launchChromium, percentile, processUsage, startWebProcess } from './dashboard/web';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  const value = index === -1 ? Number.NaN : Number(process.argv[index + 1]);
  return Number.isFinite(value) ? value : fallback;
}

const clusters = flag('--clusters', 40);
const nodesPerCluster = 5;
const durationS = flag('--duration-s', 60);
const warmupS = 15;
const memorySampleS = 10;
/**
 * The model holds 5-minute lag windows and bounded timelines, so memory is
 * expected to grow until they are full; "flat" is judged after that.
 */
const windowsFullAfterS = 360;

/** RSS growth once the windows are full: the median of the first minute after that against the median of the last minute. */
function steadyGrowth(memory: Array<{ atS: number; rssBytes: number }>): Record<string, number> {
  const steady = memory.filter((sample) => sample.atS >= windowsFullAfterS);
  const minuteSamples = Math.max(1, Math.round(60 / memorySampleS));
  if (steady.length < 2 * minuteSamples) return {};
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const early = median(steady.slice(0, minuteSamples).map((sample) => sample.rssBytes));
  const late = median(steady.slice(-minuteSamples).map((sample) => sample.rssBytes));
  return {
    steadyFromS: windowsFullAfterS,
    hubRssSteadyStartMiB: Math.round(early / 1048576),
    hubRssSteadyEndMiB: Math.round(late / 1048576),
    hubRssSteadyGrowthPercent: Math.round(((late - early) / early) * 1000) / 10,
  };
}

const fleet = await startFakeFleet({ clusters, nodesPerCluster, token: 'bench-token-0123456789' });
const web = await startWebProcess();
const browser = await launchChromium();
try {
  await connectProfiles(
    web.url,
    fleet.clusters.map((cluster, i) => ({ name: `cluster-${i + 1}`, endpoints: cluster.nodes.map((node) => node.endpoint), token: fleet.token })),
  );
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(web.url);
  await page.getByTestId('leader-name').first().waitFor({ timeout: 30_000 });
  await new Promise((resolve) => setTimeout(resolve, warmupS * 1_000));

  // A string, not a closure: tsx would wrap named functions in a helper the page does not have.
  await page.evaluate(`(() => {
    const frames = [];
    window.frames_ = frames;
    let last = performance.now();
    const loop = (now) => { frames.push(now - last); last = now; requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
  })()`);
  const memory: Array<{ atS: number; rssBytes: number }> = [];
  const cpuStart = await processUsage(web.pid);
  const startedAt = Date.now();
  while (Date.now() - startedAt < durationS * 1_000) {
    const usage = await processUsage(web.pid);
    memory.push({ atS: Math.round((Date.now() - startedAt) / 1_000), rssBytes: usage.rssBytes });
    await new Promise((resolve) => setTimeout(resolve, Math.min(memorySampleS * 1_000, durationS * 1_000 - (Date.now() - startedAt))));
  }
  const cpuEnd = await processUsage(web.pid);
  const wallS = (Date.now() - startedAt) / 1_000;
  memory.push({ atS: Math.round(wallS), rssBytes: cpuEnd.rssBytes });
  const frames = ((await page.evaluate('window.frames_')) as number[]).slice(1);
  const first = memory[0]?.rssBytes ?? 0;
  const last = memory.at(-1)?.rssBytes ?? 0;
  const result = {
    benchmark: 'dashboard-scale',
    date: new Date().toISOString(),
    nodes: clusters * nodesPerCluster,
    clusters,
    statusHz: 10,
    durationS: Math.round(wallS),
    frames: frames.length,
    frameP50Ms: Math.round(percentile(frames, 50) * 10) / 10,
    frameP95Ms: Math.round(percentile(frames, 95) * 10) / 10,
    hubCpuPercentOfOneCore: Math.round(((cpuEnd.cpuSeconds - cpuStart.cpuSeconds) / wallS) * 1000) / 10,
    hubRssFirstMiB: Math.round(first / 1048576),
    hubRssLastMiB: Math.round(last / 1048576),
    hubRssMaxMiB: Math.round(Math.max(...memory.map((sample) => sample.rssBytes)) / 1048576),
    hubRssGrowthPercent: Math.round(((last - first) / first) * 1000) / 10,
    ...steadyGrowth(memory),
  };
  console.table([result]);
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/dashboard-scale.json', JSON.stringify({ ...result, memory }, null, 2));
} finally {
  await browser.close();
  await web.stop();
  await fleet.close();
}

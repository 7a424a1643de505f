import { expect, test, type Page } from '@playwright/test';
import { putWithRetry, startTestCluster, type TestCluster } from '../agent/runtime/harness';
import { startWeb, type RunningWeb } from './web-server';

/**
 * The dashboard against a real 3-node cluster of agent processes, driven in
 * Chromium as an operator would. The tests share the cluster and run in order.
 */
test.describe.configure({ mode: 'serial' });

let cluster: TestCluster;
let web: RunningWeb;
let page: Page;

test.beforeAll(async ({ browser }) => {
  // Small segments so that a few writes seal some, and the corruption drill has a sealed segment to damage.
  cluster = await startTestCluster({ nodes: 3, allowDrills: true, agentArgs: ['--segment-bytes-max', '4096'] });
  await cluster.waitForLeader();
  web = await startWeb();
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(web.url);
});

test.afterAll(async () => {
  await page?.close();
  await web?.stop();
  await cluster?.stop();
});

const banner = () => page.getByTestId('health-banner').first();

async function actualLeader(excluding: string[] = []): Promise<string> {
  return cluster.waitForLeader({ excluding });
}

test('shows the leader within 2 s of connecting to the agents', async () => {
  await page.getByLabel('Cluster name').fill('e2e');
  await page.getByLabel('Agent endpoints').fill(cluster.ids().map((id) => cluster.http(id).replace('http://', '')).join(', '));
  await page.getByLabel('Token').fill(cluster.cluster.file.operatorToken);
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  const leader = await actualLeader();
  await expect(banner().getByTestId('leader-name')).toHaveText(leader, { timeout: 2_000 });
  await expect(banner()).toContainText('Healthy');
  await expect(page.getByRole('article', { name: `node ${leader}` })).toHaveAttribute('data-leader', 'true');
  await page.screenshot({ path: 'docs/screenshots/cluster-view.png', fullPage: true });
});

test('moves leadership from the UI to a chosen follower after pre-flight checks, and the audit shows it', async () => {
  const leader = await actualLeader();
  const target = cluster.ids().find((id) => id !== leader) ?? 'n1';
  await page.getByRole('button', { name: 'Move leadership…' }).click();
  const dialog = page.getByRole('dialog', { name: /Move leadership/ });
  await dialog.getByLabel('Target node').selectOption(target);
  const confirm = dialog.getByRole('button', { name: `Move leadership to ${target}` });
  await expect(confirm).toBeEnabled();
  await expect(dialog).toContainText('target caught up');
  await page.screenshot({ path: 'docs/screenshots/failover-dialog.png' });
  await confirm.click();
  await expect(dialog.locator('[data-outcome="succeeded"]')).toContainText(`${target} leads`, { timeout: 15_000 });
  expect(await actualLeader()).toBe(target);
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(banner().getByTestId('leader-name')).toHaveText(target);
  const audit = page.getByRole('region', { name: 'Operator audit' });
  await expect(audit.locator('tr[data-outcome="completed"]').first()).toContainText(`${leader} → ${target}`);
  await expect(page.locator('.timeline-list')).toContainText(target);
});

test('refuses a failover to a paused follower and says why', async () => {
  const leader = await actualLeader();
  const target = cluster.ids().find((id) => id !== leader) ?? 'n1';
  await cluster.kill(target, 'SIGSTOP');
  try {
    await expect(page.getByRole('article', { name: `node ${target}` })).not.toHaveAttribute('data-reachability', 'reachable', { timeout: 10_000 });
    await page.getByRole('button', { name: 'Move leadership…' }).click();
    const dialog = page.getByRole('dialog', { name: /Move leadership/ });
    await dialog.getByLabel('Target node').selectOption(target);
    await expect(dialog.getByTestId('failover-blocked')).toContainText('Refused', { timeout: 5_000 });
    await expect(dialog).toContainText('target reachable');
    await expect(dialog.getByRole('button', { name: `Move leadership to ${target}` })).toBeDisabled();
    await page.screenshot({ path: 'docs/screenshots/failover-refused.png' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  } finally {
    await cluster.kill(target, 'SIGCONT');
  }
  expect(await actualLeader()).toBe(leader);
});

test('after the leader is killed with SIGKILL the UI shows the new leader and the failover, and the no-leader alert clears', async () => {
  const leader = await actualLeader();
  await cluster.kill(leader, 'SIGKILL');
  const successor = await actualLeader([leader]);
  await expect(banner().getByTestId('leader-name')).toHaveText(successor, { timeout: 10_000 });
  const failovers = page.getByRole('region', { name: 'Failovers' });
  await expect(failovers).toContainText(`${leader}`);
  await expect(failovers).toContainText(successor);
  await expect(page.getByRole('region', { name: /Alerts/ })).not.toContainText('No leader', { timeout: 10_000 });
  await expect(page.getByRole('article', { name: `node ${leader}` })).toHaveAttribute('data-role', 'offline', { timeout: 10_000 });
  await page.screenshot({ path: 'docs/screenshots/after-failover.png', fullPage: true });
  await cluster.restart(leader);
  await expect(page.getByRole('article', { name: `node ${leader}` })).toHaveAttribute('data-role', 'follower', { timeout: 15_000 });
});

test('a corruption drill started from the node drawer raises a corruption alert, then shows the repair', async () => {
  for (let i = 0; i < 120; i += 1) await putWithRetry(cluster, `fill-${i % 30}`, `value-${i}-${'x'.repeat(60)}`);
  const leader = await actualLeader();
  const target = cluster.ids().find((id) => id !== leader) ?? 'n1';
  await page.getByRole('button', { name: `details of ${target}` }).click();
  const drawer = page.getByRole('dialog', { name: `details of node ${target}` });
  await drawer.getByRole('button', { name: `drill on ${target}: Flip a bit in the log` }).click();
  await expect(page.locator('.timeline-list')).toContainText('fault injected');
  // The operator does not wait for the background scrubber.
  await drawer.getByRole('button', { name: `scrub ${target} now` }).click();
  const alerts = page.getByRole('region', { name: /Alerts/ });
  await expect(page.locator('.timeline-list')).toContainText(`corruption`, { timeout: 20_000 });
  await expect(alerts.getByText(new RegExp(`(Corruption on|Repaired on) ${target}`)).first()).toBeVisible({ timeout: 20_000 });
  await expect(alerts.getByText(`Repaired on ${target}`)).toBeVisible({ timeout: 30_000 });
  await expect(drawer).toContainText('1 repaired');
  await drawer.getByRole('button', { name: 'close node details' }).click();
  await page.screenshot({ path: 'docs/screenshots/corruption-drill.png', fullPage: true });
  const audit = page.getByRole('region', { name: 'Operator audit' });
  await expect(audit).toContainText('corrupt');
  await expect(audit).toContainText('scrub');
});

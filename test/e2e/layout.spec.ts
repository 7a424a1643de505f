import { expect, test, type Page } from '@playwright/test';
import { connectProfiles } from '../support/bridge-client';
import { startFakeFleet, type FakeFleet } from '../support/fake-agents';
import { startWeb, type RunningWeb } from './web-server';

/**
 * Layout, keyboard and theme checks with simulated agents (the protocol, not
 * the consensus, matters here): two clusters, so the overview shows too.
 */
test.describe.configure({ mode: 'serial' });

let fleet: FakeFleet;
let web: RunningWeb;

test.beforeAll(async () => {
  fleet = await startFakeFleet({ clusters: 2, nodesPerCluster: 3, token: 'layout-token-0123456789' });
  web = await startWeb();
  await connectProfiles(
    web.url,
    fleet.clusters.map((cluster, i) => ({ name: i === 0 ? 'payments' : 'catalog', endpoints: cluster.nodes.map((node) => node.endpoint), token: fleet.token })),
  );
});

test.afterAll(async () => {
  await web?.stop();
  await fleet?.close();
});

async function openDashboard(page: Page): Promise<void> {
  await page.goto(web.url);
  await expect(page.getByRole('region', { name: 'Clusters overview' })).toBeVisible();
  await expect(page.getByTestId('health-banner').last()).toContainText('Healthy');
}

async function horizontalOverflowPx(page: Page): Promise<number> {
  return page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as Promise<number>;
}

test('fits a 1280×800 screen without horizontal scrolling', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await openDashboard(page);
  expect(await horizontalOverflowPx(page)).toBeLessThanOrEqual(0);
  await page.screenshot({ path: 'docs/screenshots/overview-1280x800.png' });
});

test('uses the width of a 4K screen', async ({ page }) => {
  await page.setViewportSize({ width: 3840, height: 2160 });
  await openDashboard(page);
  expect(await horizontalOverflowPx(page)).toBeLessThanOrEqual(0);
  const width = (await page.getByTestId('health-banner').last().boundingBox())?.width ?? 0;
  expect(width).toBeGreaterThan(2_000);
  await page.screenshot({ path: 'docs/screenshots/cluster-view-4k.png' });
});

test('opens another cluster from the overview and shows its full view', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await openDashboard(page);
  await page.getByRole('button', { name: 'open cluster catalog' }).click();
  await expect(page.getByRole('region', { name: /^catalog:/ })).toBeVisible();
});

test('is usable from the keyboard: tab to a node, open its details, close them with Escape', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await openDashboard(page);
  const details = page.getByRole('button', { name: 'details of n2' });
  const focusedLabel = () => page.evaluate('document.activeElement?.getAttribute("aria-label") ?? null') as Promise<string | null>;
  for (let presses = 0; presses < 60 && (await focusedLabel()) !== 'details of n2'; presses += 1) await page.keyboard.press('Tab');
  await expect(details).toBeFocused();
  await page.keyboard.press('Enter');
  const drawer = page.getByRole('dialog', { name: 'details of node n2' });
  await expect(drawer).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(drawer).toBeHidden();
});

test('switches to the light theme and remembers it', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await openDashboard(page);
  await page.getByRole('button', { name: 'switch to light theme' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  await page.screenshot({ path: 'docs/screenshots/cluster-view-light.png', fullPage: true });
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
});

import { expect, test } from '@playwright/test';
import { startWeb, type RunningWeb } from './web-server';

let web: RunningWeb;

test.beforeAll(async () => {
  web = await startWeb();
});

test.afterAll(async () => {
  await web.stop();
});

test('the app shell shows an honest empty state and the form to connect to agents', async ({ page }) => {
  await page.goto(web.url);
  await expect(page.getByRole('heading', { name: 'No clusters connected' })).toBeVisible();
  await expect(page.getByText('web mode', { exact: true })).toBeVisible();
  await expect(page.getByLabel('Agent endpoints')).toBeVisible();
  // The session token leaves the address bar once the page has it.
  expect(page.url()).not.toContain('session=');
  await page.screenshot({ path: 'docs/screenshots/app-shell.png' });
});

test('a malformed endpoint is refused with a message that names the field', async ({ page }) => {
  await page.goto(web.url);
  await page.getByLabel('Cluster name').fill('staging');
  await page.getByLabel('Agent endpoints').fill('not an endpoint');
  await page.getByLabel('Token').fill('secret');
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('endpoints');
  await expect(page.getByRole('heading', { name: 'No clusters connected' })).toBeVisible();
});

test('connecting to an agent that is not running shows the link as connecting, then the profile is saved', async ({ page }) => {
  await page.goto(web.url);
  await page.getByLabel('Cluster name').fill('nowhere');
  // Port 9 (discard) on loopback: nothing listens there in the test environment.
  await page.getByLabel('Agent endpoints').fill('127.0.0.1:9');
  await page.getByLabel('Token').fill('viewer-token');
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  const card = page.getByRole('article', { name: 'cluster nowhere' });
  await expect(card).toBeVisible();
  await expect(card.getByText('127.0.0.1:9')).toBeVisible();
  await expect(card.locator('.pill')).toHaveText(/connecting|unreachable/);
  await expect(page.getByRole('complementary', { name: 'Cluster profiles' }).getByText('nowhere')).toBeVisible();
  // The token never comes back to the renderer.
  await expect(page.locator('body')).not.toContainText('viewer-token');
});

test('a page without the session token is refused by the hub and says so', async ({ page }) => {
  const bare = web.url.split('#')[0] ?? web.url;
  await page.goto(bare);
  await expect(page.getByRole('alert')).toContainText('unauthorized');
  await expect(page.getByText('web mode', { exact: true })).toHaveCount(0);
});

test('edits a saved profile: new endpoints and lag thresholds, the token kept without being shown', async ({ page }) => {
  await page.goto(web.url);
  const profiles = page.getByRole('complementary', { name: 'Cluster profiles' });
  await expect(profiles.getByText('nowhere')).toBeVisible();
  await profiles.getByRole('button', { name: 'edit profile nowhere' }).click();
  const dialog = page.getByRole('dialog', { name: 'Edit profile nowhere' });
  await expect(dialog.getByLabel('Token')).toHaveValue('');
  await dialog.getByLabel('Agent endpoints').fill('127.0.0.1:9, 127.0.0.1:11');
  await dialog.getByLabel('Follower lag, entries').fill('250');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toBeHidden();
  await expect(profiles.getByText('2 agents')).toBeVisible();
  const card = page.getByRole('article', { name: 'cluster nowhere' });
  await expect(card.getByText('127.0.0.1:11')).toBeVisible();
  await expect(page.locator('body')).not.toContainText('viewer-token');
});

import { test, expect, uniqueModel } from './fixtures';

// (e) Without JavaScript: plain form posts, server-rendered pages, no wasm.

test('without JavaScript: sign in with the form, see the server-rendered Dashboard, sign out', async ({
  page,
  kt,
  gateway,
}) => {
  const model = uniqueModel();
  await gateway.expectCompletion(model);

  await kt.signIn();
  await kt.gotoDashboardListing(model);

  await expect(kt.dashboardHeading()).toBeVisible();
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await expect(page.locator('main[data-hydrated="true"]')).toHaveCount(0);

  // The events table is in the server HTML, with the request just made.
  await expect(kt.eventsTable()).toBeVisible();
  const row = kt.eventRowsWith(model);
  await expect(row).toHaveCount(1);
  await expect(row).toHaveAttribute('data-event-id', /\S/);
  await expect(kt.cellText(row, 'allow')).toBeVisible();
  await expect(kt.cellText(row, 'demo')).toBeVisible();
  await expect(kt.stat('requests')).toBeVisible();
  await expect(kt.stat('blocked')).toBeVisible();
  await expect(kt.stat('spend')).toContainText(/\$\d[\d,]*\.\d{4}\b/);

  // No script draws the chart, but its data is readable: the option JSON and the table.
  await expect(kt.requestsChart()).toBeAttached();
  await kt.requestsChartOption();
  await expect(kt.requestsChart().locator('svg')).toHaveCount(0);
  await expect(kt.requestsChartTable()).toBeVisible();

  await kt.signOut();
  await kt.expectSignedOut();
});

test('without JavaScript: a wrong password shows the alert', async ({ page, kt, creds, consoleGuard }) => {
  // The re-rendered login page may come with a 4xx status, which Chromium logs as a failed load.
  consoleGuard.allow(/Failed to load resource: the server responded with a status of 4\d\d/);

  await kt.openLogin();
  await kt.submitLogin(creds.email, `${creds.password}-wrong`);

  await expect(page.getByRole('alert')).toContainText('Invalid email or password');
  await kt.expectPath('/login');

  await page.goto('/');
  await kt.expectPath('/login');
});

import { consoleTest as test, expect, integersIn, uniqueModel, uniqueSlug, uniqueSuffix } from './fixtures';

// The console without JavaScript: every page is complete server HTML and every change is a plain
// form post (post → redirect → get), so the Dashboard, the Cost Center, Settings and the CSV
// export all work with scripts disabled.

test.describe.configure({ timeout: 60_000 });

/** A USD amount as the console prints it: "$12.3456", or "$0.000111" below one cent. */
const USD = /^\s*-?\$(\d[\d,]*\.\d{4}|0\.\d{6})\s*$/;

test('without JavaScript: the Dashboard and the Cost Center render their stats and tables', async ({
  page,
  kt,
  ui,
  gateway,
}) => {
  const model = uniqueModel();
  await gateway.expectCompletion(model);

  await kt.signIn();
  await kt.gotoDashboardListing(model);
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await expect(page.locator('main[data-hydrated="true"]')).toHaveCount(0);
  for (const stat of ['requests', 'blocked', 'spend', 'tokens', 'p50', 'p95']) {
    await expect(page.getByTestId(`stat-${stat}`), `stat-${stat}`).toBeVisible();
  }
  expect(await kt.statCount('requests')).toBeGreaterThanOrEqual(1);
  await expect(page.getByTestId('stat-spend')).toHaveText(USD);
  // Charts are not drawn, but their numbers are in the tables beside them.
  for (const chart of ['requests', 'spend']) {
    const div = page.locator(`div.kt-chart[data-chart="${chart}"]`);
    await expect(div).toHaveCount(1);
    await expect(div.locator('svg')).toHaveCount(0);
    await expect(div.locator('xpath=following-sibling::table[contains(@class, "kt-chart-data")]')).toBeVisible();
  }
  await expect(page.locator('table#fleet tr[data-gateway="demo"]')).toBeVisible();
  await expect(kt.eventRowsWith(model)).toHaveCount(1);
  await ui.shot('dashboard');

  // The gateway drill-down, following the fleet link.
  await page.locator('table#fleet tr[data-gateway="demo"] td a').first().click();
  await expect(page).toHaveURL(/\/gateways\/[^/]+$/);
  await expect(ui.heading('Gateway demo')).toBeVisible();
  await expect(page.locator('dl.facts')).toContainText('Status');
  await expect(kt.eventRowsWith(model)).toHaveCount(1);
  await ui.shot('gateway');

  // The Cost Center, via the navigation.
  await ui.topNav().getByRole('link', { name: 'Cost Center' }).click();
  await kt.expectPath('/cost');
  await expect(ui.heading('Cost Center')).toBeVisible();
  await expect(page).toHaveTitle('Cost Center · kt');
  for (const id of ['cost-total', 'cost-mtd', 'cost-forecast']) {
    await expect(page.getByTestId(id), id).toHaveText(USD);
  }
  for (const chart of ['spend-by-day', 'spend-by-team', 'spend-by-model']) {
    const div = page.locator(`div.kt-chart[data-chart="${chart}"]`);
    await expect(div, chart).toHaveCount(1);
    await expect(div.locator('xpath=following-sibling::table[contains(@class, "kt-chart-data")]')).toBeAttached();
  }
  const demo = page.locator('table#spend-by-team tr[data-key="demo"]');
  await expect(demo).toBeVisible();
  expect(integersIn(await demo.locator('td').nth(1).innerText())[0]).toBeGreaterThanOrEqual(1);
  const byModel = page.locator(`table#spend-by-model tr[data-key="${model}"]`);
  await expect(byModel).toBeVisible();
  await expect(byModel.locator('td').nth(1)).toHaveText('1');
  await expect(byModel.locator('td').nth(3)).toHaveText(USD);
  const budget = page.locator('table#budgets tr[data-team="demo"]');
  await expect(budget).toBeVisible();
  await expect(budget.locator('td[data-col="limit"]')).toHaveText('$50.0000');
  await expect(budget.locator('td[data-col="spend"]')).toHaveText(USD);
  await ui.shot('cost');

  // Range links work as plain links.
  await page.locator('nav.ranges').getByRole('link', { name: 'Last 30 days' }).click();
  await expect(page).toHaveURL(/\/cost\?range=30d$/);
  await expect(page.getByTestId('csv-export')).toHaveAttribute('href', '/cost/export.csv?range=30d');
  await expect(page.locator(`table#spend-by-model tr[data-key="${model}"]`)).toBeVisible();
  await ui.shot('cost-30d');
});

test('without JavaScript: the CSV export downloads the Cost Center figures', async ({ page, kt, gateway, request }) => {
  const model = uniqueModel();
  await gateway.expectCompletion(model);
  await kt.signIn();

  await page.goto('/cost');
  const href = await page.getByTestId('csv-export').getAttribute('href');
  expect(href).toBe('/cost/export.csv?range=month');
  const res = await page.request.get(href!);
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toMatch(/^text\/csv/);
  expect(res.headers()['content-disposition'] ?? '').toMatch(/attachment; filename="kt-cost-month\.csv"/);
  const lines = (await res.text()).split(/\r?\n/);
  expect(lines[0]).toBe('section,key,requests,tokens,cost_usd');
  expect(lines.some((l) => /^team,demo,\d+,\d+,\d+\.\d{6}$/.test(l))).toBe(true);
  expect(
    lines.some((l) => new RegExp(`^model,${model},1,\\d+,\\d+\\.\\d{6}$`).test(l)),
    `a model,${model},1,… line:\n${lines.join('\n')}`,
  ).toBe(true);
  expect(lines.some((l) => /^day,\d{4}-\d{2}-\d{2},\d+,\d+,\d+\.\d{6}$/.test(l))).toBe(true);
  const blank = lines.indexOf('');
  expect(lines[blank + 1]).toBe(
    'budget_team,month_spend_usd,cost_limit_usd,forecast_usd,wallet_allocated_usd,wallet_spent_usd,wallet_reserved_usd,wallet_balance_usd',
  );
  expect(lines.some((l) => /^demo,\d+\.\d{6},50\.000000,/.test(l))).toBe(true);

  // Signed out, the export is not served.
  // (The `request` fixture has no browser cookies.)
  const anonymous = await request.get(href!, { maxRedirects: 0 });
  expect([302, 303, 307, 401, 403]).toContain(anonymous.status());
});

test('without JavaScript: creating a key shows its secret once in the flash', async ({ page, kt, ui }) => {
  const name = `e2e-nojs-${uniqueSuffix()}`;
  await kt.signIn();
  await page.goto('/settings/keys');
  await expect(ui.heading('Keys')).toBeVisible();
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();

  const secret = await ui.createKey(name, 'gateway', 'demo');
  expect(secret).toMatch(/^kt_gk_\S+$/);
  await kt.expectPath('/settings/keys');
  await expect(page.locator('button[data-copy="#secret-once"]')).toBeVisible();
  await expect(ui.keyRow(name).locator('.status')).toHaveText('active');
  await ui.shot('keys-created');

  await page.reload();
  await expect(ui.secret()).toHaveCount(0);
  expect(await page.content()).not.toContain(secret);

  // Revoking works without JavaScript too (confirmation link, then a form post).
  await ui.keyRow(name).getByRole('link', { name: 'Revoke' }).click();
  await expect(page.getByRole('alertdialog')).toBeVisible();
  await ui.submit(page.getByRole('alertdialog').getByRole('button', { name: 'Revoke key' }));
  await ui.expectFlashOk('Revoked');
  await expect(ui.keyRow(name).locator('.status')).toHaveText('revoked');
  await ui.shot('keys-revoked');
});

test('without JavaScript: an org admin creates a team and allocates credit to it', async ({ page, kt, ui }) => {
  const slug = uniqueSlug('e2e-nojs');
  await kt.signIn();
  await ui.createTeam(slug);
  await ui.shot('teams');

  await page.goto('/cost');
  const form = page.locator('form#allocate-form');
  await form.locator('select[name="team_id"]').selectOption({ label: slug });
  await form.locator('input[name="amount"]').fill('3');
  await ui.submit(form.getByRole('button', { name: 'Allocate' }));
  await ui.expectFlashOk('Allocated $3.0000 to the wallet');
  const row = page.locator(`table#budgets tr[data-team="${slug}"]`);
  await expect(row.locator('td[data-col="allocated"]')).toHaveText('$3.0000');
  await expect(row.locator('td[data-col="balance"]')).toHaveText('$3.0000');
  await ui.shot('cost-allocated');
});

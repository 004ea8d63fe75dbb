import {
  consoleTest as test,
  expect,
  ADMIN_EMAIL,
  FORBIDDEN_TEXT,
  GATEWAY_URL,
  gatewayWithKey,
  integersIn,
  parseUsd,
  uniqueEmail,
  uniqueModel,
  uniqueSlug,
  uniqueSuffix,
} from './fixtures';

// The console beyond sign-in, with JavaScript on: navigation and role scoping, the Dashboard and
// the gateway drill-down, the Cost Center (tables, budgets, wallet allocation, CSV), Settings
// (keys, teams, users, provider secrets), the API reference, sign-in throttling, and that no
// page talks to anything but this machine.
//
// Every test signs in itself; names are unique, so tests do not depend on each other's data.

// Multi-step flows (several users, many pages, each hydrating a debug wasm bundle on 2 cores).
test.describe.configure({ timeout: 90_000 });

/** A page answered 403/404 shows up in Chromium's console as a failed resource load. */
const FAILED_LOAD = /Failed to load resource: the server responded with a status of 40[34]/;

/** A USD amount as the console prints it: "$12.3456", or "$0.000111" below one cent. */
const USD = /^\s*-?\$(\d[\d,]*\.\d{4}|0\.\d{6})\s*$/;


// ---------------------------------------------------------------------------------------------
// Navigation

test('the org admin sees every page in the navigation, with titles and breadcrumbs', async ({ page, kt, ui }) => {
  await kt.signIn();
  await kt.settle();
  await ui.shot('dashboard');

  await expect(ui.role()).toHaveText('Org admin');
  expect(await ui.topNavLabels()).toEqual(['Dashboard', 'Cost Center', 'Gateways', 'Configurations', 'Git repositories', 'Onboarding', 'Escalations', 'Audit log', 'Settings', 'API']);
  await expect(ui.topNav().getByRole('link', { name: 'Dashboard' })).toHaveAttribute('href', '/');
  await expect(ui.topNav().getByRole('link', { name: 'Cost Center' })).toHaveAttribute('href', '/cost');
  await expect(ui.topNav().getByRole('link', { name: 'Settings' })).toHaveAttribute('href', '/settings');
  await expect(ui.topNav().getByRole('link', { name: 'API' })).toHaveAttribute('href', '/api-reference');
  await expect(ui.topNav().locator('a[aria-current="page"]')).toHaveText('Dashboard');
  await expect(page).toHaveTitle('Dashboard · kt');
  await expect(ui.crumbs()).toContainText('Dashboard');

  // Following the navigation links.
  await ui.topNav().getByRole('link', { name: 'Cost Center' }).click();
  await kt.expectPath('/cost');
  await expect(ui.heading('Cost Center')).toBeVisible();
  await expect(page).toHaveTitle('Cost Center · kt');
  await expect(ui.topNav().locator('a[aria-current="page"]')).toHaveText('Cost Center');
  await expect(ui.crumbs().locator('li[aria-current="page"]')).toHaveText('Cost Center');
  await kt.settle();
  await ui.shot('cost');

  // /settings opens the first section, Keys.
  await ui.topNav().getByRole('link', { name: 'Settings' }).click();
  await kt.expectPath('/settings/keys');
  await expect(ui.heading('Keys')).toBeVisible();
  await expect(page).toHaveTitle('Keys · Settings · kt');
  await expect(ui.crumbs().getByRole('link', { name: 'Settings' })).toHaveAttribute('href', '/settings');
  await expect(ui.crumbs().locator('li[aria-current="page"]')).toHaveText('Keys');
  expect(await ui.settingsTabLabels()).toEqual([
    'Keys',
    'Teams and members',
    'Users',
    'Provider secrets',
    'Webhooks',
    'Onboarding templates',
  ]);
  await kt.settle();
  await ui.shot('settings-keys');

  // A full page load of /settings redirects too.
  await page.goto('/settings');
  await kt.expectPath('/settings/keys');
  await expect(ui.heading('Keys')).toBeVisible();
  await kt.settle();

  for (const [tab, path, title, heading] of [
    ['Teams and members', '/settings/teams', 'Teams · Settings · kt', 'Teams and members'],
    ['Users', '/settings/users', 'Users · Settings · kt', 'Users'],
    ['Provider secrets', '/settings/secrets', 'Provider secrets · Settings · kt', 'Provider secrets'],
    ['Webhooks', '/settings/webhooks', 'Webhooks · Settings · kt', 'Webhooks'],
    ['Onboarding templates', '/settings/templates', 'Onboarding templates · Settings · kt', 'Onboarding templates'],
  ] as const) {
    await ui.settingsTabs().getByRole('link', { name: tab }).click();
    await kt.expectPath(path);
    await expect(ui.heading(heading)).toBeVisible();
    await expect(page).toHaveTitle(title);
    await expect(ui.settingsTabs().locator('a[aria-current="page"]')).toHaveText(tab);
    await kt.settle();
    await ui.shot(`settings-${path.split('/').pop()}`);
  }

  await ui.topNav().getByRole('link', { name: 'API' }).click();
  await kt.expectPath('/api-reference');
  await expect(ui.heading('API reference')).toBeVisible();
  await expect(page).toHaveTitle('API reference · kt');
  await kt.settle();
  await ui.shot('api-reference');
});

// ---------------------------------------------------------------------------------------------
// Dashboard and gateway drill-down

test('the Dashboard shows stats, charts, the fleet and a gateway drill-down', async ({ page, kt, ui, gateway, consoleGuard }) => {
  const model = uniqueModel();
  await gateway.expectCompletion(model);

  await kt.signIn();
  await kt.gotoDashboardListing(model);
  await ui.shot('dashboard');

  for (const stat of ['requests', 'blocked', 'spend', 'tokens', 'p50', 'p95']) {
    await expect(page.getByTestId(`stat-${stat}`), `stat-${stat}`).toBeVisible();
  }
  await expect(page.getByTestId('stat-spend')).toHaveText(USD);
  expect(integersIn(await page.getByTestId('stat-tokens').innerText())[0]).toBeGreaterThan(0);
  await expect(page.getByTestId('stat-p50')).toHaveText(/^\s*(\d+ ms|—)\s*$/);
  await expect(page.getByTestId('stat-p95')).toHaveText(/^\s*(\d+ ms|—)\s*$/);

  for (const chart of ['requests', 'spend']) {
    const div = page.locator(`div.kt-chart[data-chart="${chart}"]`);
    await expect(div).toHaveCount(1);
    await expect(div).toHaveAttribute('data-option', /\{/);
    await expect(div.locator('xpath=following-sibling::table[contains(@class, "kt-chart-data")]')).toHaveCount(1);
    // The chart script draws it (SVG renderer).
    await expect(div.locator('svg').first()).toBeVisible({ timeout: 15_000 });
  }

  // The fleet: the demo gateway, healthy, linking to its page.
  const fleetRow = page.locator('table#fleet tr[data-gateway="demo"]');
  await expect(fleetRow).toHaveCount(1);
  const fleetLink = fleetRow.locator('td').first().locator('a');
  const href = await fleetLink.getAttribute('href');
  expect(href).toMatch(/^\/gateways\/[^/]+$/);
  const gatewayId = href!.split('/').pop()!;

  // Every event row links its gateway to the gateway page.
  const eventRow = kt.eventRowsWith(model);
  await expect(eventRow).toHaveCount(1);
  await expect(eventRow.locator(`a[href="/gateways/${gatewayId}"]`)).toHaveText('demo');

  // Ranges are plain links.
  await page.locator('nav.ranges').getByRole('link', { name: 'Last hour' }).click();
  await expect(page).toHaveURL(/\/\?range=1h$/);
  await expect(page.locator('nav.ranges a[aria-current="page"]')).toHaveText('Last hour');
  await expect(kt.stat('requests')).toBeVisible();
  await kt.settle();
  await ui.shot('dashboard-1h');

  // Drill down into the gateway.
  await page.goto('/');
  await kt.settle();
  await page.locator('table#fleet tr[data-gateway="demo"] td a').first().click();
  await kt.expectPath(`/gateways/${gatewayId}`);
  await expect(ui.heading('Gateway demo')).toBeVisible();
  await expect(page).toHaveTitle('Gateway demo · kt');
  await expect(ui.crumbs().getByRole('link', { name: 'Gateways' })).toHaveAttribute('href', '/gateways');
  await expect(ui.crumbs().locator('li[aria-current="page"]')).toHaveText('Gateway demo');
  const facts = page.locator('dl.facts');
  await expect(facts).toBeVisible();
  await expect(facts).toContainText('Status');
  await expect(facts.locator('.health')).toHaveText(/\S/);
  await expect(facts).toContainText('Last heartbeat');
  await expect(page.getByTestId('stat-requests')).toBeVisible();
  await expect(page.locator('div.kt-chart[data-chart="requests"]')).toHaveCount(1);
  await expect(page.locator('div.kt-chart[data-chart="spend"]')).toHaveCount(1);
  const policies = page.locator('table#top-policies');
  if ((await policies.count()) === 0) {
    await expect(page.getByText('No policy fired in this range.')).toBeVisible();
  } else {
    await expect(policies.locator('tbody tr').first()).toBeVisible();
  }
  // Its events are this gateway's only.
  await expect(kt.eventRowsWith(model)).toHaveCount(1);
  const links = await kt.eventRows().locator('td:nth-child(2) a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  expect(links.length).toBeGreaterThan(0);
  expect(new Set(links)).toEqual(new Set([`/gateways/${gatewayId}`]));
  await kt.settle();
  await ui.shot('gateway');

  // An unknown gateway id reads as a message (404), not a blank page.
  consoleGuard.allow(FAILED_LOAD);
  const res = await page.goto('/gateways/no-such-gateway-e2e');
  expect(res?.status()).toBe(404);
  await expect(page.getByText('No such gateway')).toBeVisible();
  await kt.settle();
  await ui.shot('gateway-unknown');
});

test('Dashboard and Cost Center numbers match the requests sent through the gateway', async ({ page, kt, ui, gateway }) => {
  const N = 3;
  const model = uniqueModel();

  await kt.signIn();
  await kt.settle();
  const before = await kt.statCount('requests');

  for (let i = 0; i < N; i++) await gateway.expectCompletion(model);

  // Events and rollups may be written shortly after the gateway answered.
  await expect(async () => {
    await kt.gotoDashboard();
    expect(await kt.statCount('requests')).toBeGreaterThanOrEqual(before + N);
  }).toPass({ timeout: 20_000 });
  await expect(kt.eventRowsWith(model)).toHaveCount(N);
  await ui.shot('dashboard');

  const row = page.locator(`table#spend-by-model tr[data-key="${model}"]`);
  await expect(async () => {
    await page.goto('/cost');
    await expect(row).toHaveCount(1, { timeout: 1_000 });
    await expect(row.locator('td').nth(1)).toHaveText(String(N), { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await kt.settle();
  await ui.shot('cost');

  const cells = (await row.locator('td').allTextContents()).map((c) => c.trim());
  expect(cells[0]).toBe(model);
  expect(cells[1]).toBe(String(N));
  const tokens = Number(cells[2].replace(/,/g, ''));
  expect(tokens, `tokens of ${model}`).toBeGreaterThan(0);
  expect(cells[3]).toMatch(USD);

  // The CSV export agrees with the table.
  const csv = await (await page.request.get('/cost/export.csv?range=month')).text();
  const line = csv.split(/\r?\n/).find((l) => l.startsWith(`model,${model},`));
  expect(line, `a "model,${model},…" line in the CSV:\n${csv}`).toBeTruthy();
  const [, , requests, csvTokens, cost] = line!.split(',');
  expect(Number(requests)).toBe(N);
  expect(Number(csvTokens)).toBe(tokens);
  const tableCost = parseUsd(cells[3]);
  expect(Number(cost)).toBeGreaterThanOrEqual(tableCost - 1e-9);
  expect(Number(cost)).toBeLessThan(tableCost + 0.0001 + 1e-9);
});

// ---------------------------------------------------------------------------------------------
// Cost Center

test('the Cost Center shows stats, charts, spend tables, budgets and exports CSV', async ({ page, kt, ui, gateway }) => {
  const model = uniqueModel();
  await gateway.expectCompletion(model);

  await kt.signIn();
  await ui.visit('/cost');
  await expect(ui.heading('Cost Center')).toBeVisible();

  for (const id of ['cost-total', 'cost-mtd', 'cost-forecast']) {
    await expect(page.getByTestId(id), id).toHaveText(USD);
  }
  expect(parseUsd(await page.getByTestId('cost-total').innerText())).toBeGreaterThan(0);
  // The forecast extrapolates the month so far: never below month to date.
  expect(parseUsd(await page.getByTestId('cost-forecast').innerText())).toBeGreaterThanOrEqual(
    parseUsd(await page.getByTestId('cost-mtd').innerText()),
  );

  for (const chart of ['spend-by-day', 'spend-by-team', 'spend-by-model']) {
    const div = page.locator(`div.kt-chart[data-chart="${chart}"]`);
    await expect(div, chart).toHaveCount(1);
    await expect(div.locator('xpath=following-sibling::table[contains(@class, "kt-chart-data")]')).toHaveCount(1);
    await expect(div.locator('svg').first()).toBeVisible({ timeout: 15_000 });
  }

  // Spend by team: the demo team, with the headers the brief names.
  await expect(page.locator('table#spend-by-team thead th')).toHaveText(['Team', 'Requests', 'Tokens', 'Spend']);
  await expect(page.locator('table#spend-by-model thead th')).toHaveText(['Model', 'Requests', 'Tokens', 'Spend']);
  const demoSpend = page.locator('table#spend-by-team tr[data-key="demo"]');
  await expect(demoSpend).toHaveCount(1);
  expect(integersIn(await demoSpend.locator('td').nth(1).innerText())[0]).toBeGreaterThanOrEqual(1);
  await expect(demoSpend.locator('td').nth(3)).toHaveText(USD);
  await expect(page.locator(`table#spend-by-model tr[data-key="${model}"]`)).toHaveCount(1);

  // Budgets: the demo team's gateway enforces the demo config's cost_limit of $50 a month.
  const budget = page.locator('table#budgets tr[data-team="demo"]');
  await expect(budget).toHaveCount(1);
  await expect(budget.locator('td[data-col="limit"]')).toHaveText('$50.0000');
  await expect(budget.locator('td[data-col="spend"]')).toHaveText(USD);
  await expect(budget.locator('td[data-col="forecast"]')).toHaveText(USD);
  await expect(budget.locator('td[data-col="allocated"]')).toHaveText(/^\s*(—|-?\$(\d[\d,]*\.\d{4}|0\.\d{6}))\s*$/);
  await expect(budget.locator('td[data-col="balance"]')).toHaveText(/^\s*(—|-?\$(\d[\d,]*\.\d{4}|0\.\d{6}))\s*$/);
  await ui.shot('cost');

  // Ranges: the export link follows the range.
  await expect(page.getByTestId('csv-export')).toHaveAttribute('href', '/cost/export.csv?range=month');
  await page.locator('nav.ranges').getByRole('link', { name: 'Last 7 days' }).click();
  await expect(page).toHaveURL(/\/cost\?range=7d$/);
  await expect(page.locator('nav.ranges a[aria-current="page"]')).toHaveText('Last 7 days');
  await expect(page.getByTestId('csv-export')).toHaveAttribute('href', '/cost/export.csv?range=7d');
  await kt.settle();
  await ui.shot('cost-7d');

  // The export: text/csv with the documented sections.
  const res = await page.request.get('/cost/export.csv?range=7d');
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toMatch(/^text\/csv/);
  const lines = (await res.text()).split(/\r?\n/);
  expect(lines[0]).toBe('section,key,requests,tokens,cost_usd');
  expect(lines.some((l) => /^team,demo,\d+,\d+,\d+\.\d{6}$/.test(l)), `a team,demo line:\n${lines.join('\n')}`).toBe(true);
  expect(lines.some((l) => l.startsWith(`model,${model},1,`))).toBe(true);
  const days = lines.filter((l) => l.startsWith('day,'));
  expect(days.length, 'a line per day of the range').toBeGreaterThanOrEqual(7);
  for (const d of days) expect(d).toMatch(/^day,\d{4}-\d{2}-\d{2},\d+,\d+,\d+\.\d{6}$/);
  const blank = lines.indexOf('');
  expect(blank).toBeGreaterThan(0);
  expect(lines[blank + 1]).toBe(
    'budget_team,month_spend_usd,cost_limit_usd,forecast_usd,wallet_allocated_usd,wallet_spent_usd,wallet_reserved_usd,wallet_balance_usd',
  );
  expect(lines.some((l) => l.startsWith('demo,') && l.split(',')[2] === '50.000000')).toBe(true);

  // The link itself downloads the file.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('csv-export').click()]);
  expect(download.suggestedFilename()).toMatch(/^kt-cost.*\.csv$/);
});

test('an org admin allocates credit to a team wallet', async ({ page, kt, ui }) => {
  const slug = uniqueSlug('e2e-wallet');
  await kt.signIn();
  // A team of its own, so that no other test's team becomes wallet-limited.
  await ui.createTeam(slug);

  await ui.visit('/cost');
  const row = page.locator(`table#budgets tr[data-team="${slug}"]`);
  await expect(row).toHaveCount(1);
  await expect(row.locator('td[data-col="allocated"]')).toHaveText('—');
  await expect(row.locator('td[data-col="balance"]')).toHaveText('—');

  const form = page.locator('form#allocate-form');
  await expect(form).toBeVisible();
  await form.locator('select[name="team_id"]').selectOption({ label: slug });
  await form.locator('input[name="amount"]').fill('12.5');
  await form.locator('input[name="reason"]').fill('e2e pilot budget');
  await ui.submit(form.getByRole('button', { name: 'Allocate' }));
  await kt.expectPath('/cost');
  await ui.expectFlashOk('Allocated $12.5000 to the wallet');
  await expect(ui.flash()).toContainText('$12.5000 in total');
  await expect(row.locator('td[data-col="allocated"]')).toHaveText('$12.5000');
  await expect(row.locator('td[data-col="balance"]')).toHaveText('$12.5000');
  await ui.shot('cost-allocated');

  // A second allocation adds up; the flash is shown once.
  await form.locator('select[name="team_id"]').selectOption({ label: slug });
  await form.locator('input[name="amount"]').fill('2.25');
  await ui.submit(form.getByRole('button', { name: 'Allocate' }));
  await ui.expectFlashOk('Allocated $2.2500 to the wallet; it now holds $14.7500 in total.');
  await expect(row.locator('td[data-col="allocated"]')).toHaveText('$14.7500');
  await expect(row.locator('td[data-col="balance"]')).toHaveText('$14.7500');
  await page.reload();
  await kt.settle();
  await expect(ui.flash()).toHaveCount(0);

  // A wrong amount is refused with an error flash.
  await form.locator('select[name="team_id"]').selectOption({ label: slug });
  await form.locator('input[name="amount"]').fill('lots');
  await ui.submit(form.getByRole('button', { name: 'Allocate' }));
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText('is not a number');
  await expect(row.locator('td[data-col="allocated"]')).toHaveText('$14.7500');
});

// ---------------------------------------------------------------------------------------------
// Settings › Keys

test('a gateway key is shown once, works through the gateway, and is refused once revoked', async ({
  page,
  kt,
  ui,
  request,
}) => {
  const name = `e2e-gw-${uniqueSuffix()}`;
  await kt.signIn();
  await ui.visit('/settings/keys');
  await expect(page.locator('form#create-key select[name="kind"] option')).toHaveText([
    /Gateway key/,
    /Access key/,
  ]);

  const secret = await ui.createKey(name, 'gateway', 'demo');
  expect(secret).toMatch(/^kt_gk_\S+$/);
  await expect(page.locator('button[data-copy="#secret-once"]')).toHaveText('Copy');
  await ui.shot('keys-created');

  const row = ui.keyRow(name);
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('gateway');
  await expect(row).toContainText('demo');
  await expect(row.locator('.status')).toHaveText('active');
  const prefix = ((await row.locator('code').textContent()) ?? '').replace('…', '').trim();
  expect(prefix.length).toBeGreaterThan(6);
  expect(secret.startsWith(prefix), `the secret starts with the listed prefix ${prefix}`).toBe(true);
  // The table never shows the secret itself.
  expect(await page.locator('table#keys').innerHTML()).not.toContain(secret);

  // Shown once: a reload no longer has it.
  await page.reload();
  await kt.settle();
  await expect(ui.flash()).toHaveCount(0);
  await expect(ui.secret()).toHaveCount(0);
  expect(await page.content()).not.toContain(secret);
  await expect(ui.keyRow(name)).toHaveCount(1);

  // The new key works through the gateway (gateways refresh their key cache within seconds).
  const gw = gatewayWithKey(request, secret);
  const model = uniqueModel();
  await expect
    .poll(async () => (await gw.chat(model)).status(), { timeout: 10_000, intervals: [250, 500, 1_000] })
    .toBe(200);

  // Revoke: a confirmation step first.
  await row.getByRole('link', { name: 'Revoke' }).click();
  await expect(page).toHaveURL(/\/settings\/keys\?confirm=/);
  const dialog = page.getByRole('alertdialog');
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText(name);
  await expect(dialog).toContainText(prefix);
  await kt.settle();
  await ui.shot('keys-confirm-revoke');
  await ui.submit(dialog.getByRole('button', { name: 'Revoke key' }));
  await kt.expectPath('/settings/keys');
  await ui.expectFlashOk(`Revoked \u201c${name}\u201d`);
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
  await expect(ui.keyRow(name).locator('.status')).toHaveText('revoked');
  await expect(ui.keyRow(name).getByRole('link', { name: 'Revoke' })).toHaveCount(0);
  await ui.shot('keys-revoked');

  // The gateway refuses it within seconds.
  await expect
    .poll(async () => (await gw.chat(model)).status(), { timeout: 15_000, intervals: [500, 1_000] })
    .toBe(401);
});

test('an access key gets its own prefix, and the Copy button copies the one-time secret', async ({
  page,
  context,
  kt,
  ui,
  baseURL,
}) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  const name = `e2e-ak-${uniqueSuffix()}`;
  await kt.signIn();
  await ui.visit('/settings/keys');
  const secret = await ui.createKey(name, 'access', '');
  expect(secret).toMatch(/^kt_ak_\S+$/);
  await expect(ui.keyRow(name)).toContainText('access');
  await expect(ui.keyRow(name)).toContainText('org-wide');
  await expect(ui.keyRow(name).locator('.status')).toHaveText('active');

  const copy = page.locator('button[data-copy="#secret-once"]');
  await copy.click();
  await expect(copy).toHaveAttribute('data-copied', 'true');
  await expect(copy).toHaveText('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  await ui.shot('keys-access-copied');

  // A key without a name is refused with an error flash (no secret).
  const form = page.locator('form#create-key');
  await form.locator('input[name="name"]').evaluate((el) => el.removeAttribute('required'));
  await form.locator('input[name="name"]').fill('   ');
  await ui.submit(form.getByRole('button', { name: 'Create key' }));
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText('give the key a name');
  await expect(ui.secret()).toHaveCount(0);
});

// ---------------------------------------------------------------------------------------------
// Settings › Teams, Users, Provider secrets

test('teams: create, rename, add a member, archive', async ({ page, kt, ui }) => {
  const slug = uniqueSlug('e2e-team');
  const email = uniqueEmail('member');
  await kt.signIn();
  await ui.visit('/settings/teams');
  await ui.createTeam(slug, `Team ${slug}`);
  const section = ui.teamSection(slug);
  await expect(section.locator('h2')).toContainText(`Team ${slug}`);
  await expect(section).toContainText('No members.');
  await ui.shot('teams-created');

  // A duplicate slug is refused.
  const create = page.locator('form#create-team');
  await create.locator('input[name="name"]').fill('Duplicate');
  await create.locator('input[name="slug"]').fill(slug);
  await ui.submit(create.getByRole('button', { name: 'Create team' }));
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText('a team with that slug already exists');
  await expect(ui.teamSection(slug)).toHaveCount(1);

  // Rename.
  await section.locator('details summary', { hasText: 'Rename, add a member' }).click();
  const rename = section.locator('form[action="/api/rename_team"]');
  await rename.locator('input[name="name"]').fill(`Renamed ${slug}`);
  await ui.submit(rename.getByRole('button', { name: 'Rename' }));
  await ui.expectFlashOk(`Renamed team ${slug} to Renamed ${slug}.`);
  await expect(ui.teamSection(slug).locator('h2')).toContainText(`Renamed ${slug}`);

  // Add a member: the user must exist first.
  await ui.inviteUser(email, 'viewer');
  await ui.visit('/settings/teams');
  await ui.teamSection(slug).locator('details summary').click();
  const add = ui.teamSection(slug).locator('form[action="/api/set_member"]').filter({ has: page.locator('input[name="email"][type="email"]') });
  await add.locator('input[name="email"]').fill(email);
  await add.locator('select[name="role"]').selectOption('member');
  await ui.submit(add.getByRole('button', { name: 'Add to team' }));
  await ui.expectFlashOk(`${email} is now Member of the team.`);
  const member = ui.teamSection(slug).locator('table.members tr', { hasText: email });
  await expect(member).toHaveCount(1);
  await expect(member).toContainText('Member');
  await ui.shot('teams-member');

  // Archive, after confirming.
  await ui.teamSection(slug).getByRole('link', { name: 'Archive' }).click();
  await expect(page).toHaveURL(/\/settings\/teams\?confirm=/);
  const dialog = page.getByRole('alertdialog');
  await expect(dialog).toContainText(`Archive team ${slug}?`);
  await kt.settle();
  await ui.submit(dialog.getByRole('button', { name: 'Archive team' }));
  await ui.expectFlashOk(`Archived team ${slug}`);
  await expect(ui.teamSection(slug).locator('.status')).toHaveText('archived');
  await expect(ui.teamSection(slug).getByRole('link', { name: 'Archive' })).toHaveCount(0);
  await ui.shot('teams-archived');

  // An archived team is no longer offered in team pickers.
  await ui.visit('/settings/keys');
  await expect(page.locator('form#create-key select[name="team_id"] option', { hasText: slug })).toHaveCount(0);
});

test('provider secrets are stored write-only: the value never reaches the page', async ({ page, kt, ui }) => {
  const name = `e2e-secret-${uniqueSuffix()}`;
  const value = `sk-e2e-${uniqueSuffix()}-${uniqueSuffix()}`;
  await kt.signIn();
  await ui.visit('/settings/secrets');
  const form = page.locator('form#put-secret');
  await expect(form.locator('input[name="value"]')).toHaveAttribute('type', 'password');
  await form.locator('input[name="name"]').fill(name);
  await form.locator('input[name="value"]').fill(value);
  await ui.submit(form.getByRole('button', { name: 'Store' }));
  await kt.expectPath('/settings/secrets');
  await ui.expectFlashOk(`Stored secret ${name}`);
  const row = page.locator(`table#secrets tr[data-secret="${name}"]`);
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('org-wide');
  await expect(row).toContainText(ADMIN_EMAIL);
  await ui.shot('secrets');

  expect(await page.content()).not.toContain(value);
  await expect(form.locator('input[name="value"]')).toHaveValue('');
  const html = await (await page.request.get('/settings/secrets')).text();
  expect(html).toContain(name);
  expect(html).not.toContain(value);

  // Storing the same name replaces it.
  await form.locator('input[name="name"]').fill(name);
  await form.locator('input[name="value"]').fill(`${value}-2`);
  await ui.submit(form.getByRole('button', { name: 'Store' }));
  await ui.expectFlashOk(`Replaced secret ${name}`);
  await expect(page.locator(`table#secrets tr[data-secret="${name}"]`)).toHaveCount(1);
  expect(await page.content()).not.toContain(value);
});

test('the API reference lists the control-plane operations by tag', async ({ page, kt, ui }) => {
  await kt.signIn();
  await ui.visit('/api-reference', 'api-reference');
  await expect(ui.heading('API reference')).toBeVisible();
  for (const op of ['GET /v1/teams', 'POST /v1/teams', 'GET /v1/tokens', 'POST /v1/wallets/allocate', 'GET /v1/events']) {
    const article = page.locator(`article.api-op[data-op="${op}"]`);
    await expect(article, op).toHaveCount(1);
    const [method, path] = op.split(' ');
    await expect(article.locator('h3')).toContainText(method);
    await expect(article.locator('h3 code')).toHaveText(path);
  }
  // Sections per tag, each in the table of contents.
  const groups = page.locator('section.api-group');
  expect(await groups.count()).toBeGreaterThan(1);
  const ids = await groups.evaluateAll((ss) => ss.map((s) => s.id));
  for (const id of ids) await expect(page.locator(`nav.toc a[href="#${id}"]`)).toHaveCount(1);
  await expect(page.getByRole('link', { name: 'OpenAPI document (JSON)' })).toHaveAttribute('href', '/v1/openapi.json');
});

// ---------------------------------------------------------------------------------------------
// Roles

test('a team lead sees and manages only their own team', async ({ page, kt, ui, request, consoleGuard }) => {
  consoleGuard.allow(FAILED_LOAD);
  const slugA = uniqueSlug('e2e-a');
  const slugB = uniqueSlug('e2e-b');
  const email = uniqueEmail('lead');

  // As the admin: two teams and a team lead in team A.
  await kt.signIn();
  await ui.createTeam(slugA);
  await ui.createTeam(slugB);
  const password = await ui.inviteUser(email, 'team_lead', slugA);
  await expect(page.locator(`table#users tr[data-user="${email}"]`)).toBeVisible();
  await ui.shot('users-invited');
  await kt.signOut();
  await kt.expectSignedOut();

  // As the team lead.
  await ui.signInAs(email, password, '/');
  await expect(kt.dashboardHeading()).toBeVisible();
  await expect(ui.role()).toHaveText(`Team lead · ${slugA}`);
  expect(await ui.topNavLabels()).toEqual(['Dashboard', 'Cost Center', 'Gateways', 'Configurations', 'Onboarding', 'Escalations', 'Audit log', 'Settings', 'API']);
  await ui.shot('lead-dashboard');

  await ui.visit('/settings/keys', 'lead-keys');
  expect(await ui.settingsTabLabels()).toEqual(['Keys', 'Teams and members']);
  // The team picker offers team A only (no org-wide choice, no other team).
  await expect(page.locator('form#create-key select[name="team_id"] option')).toHaveText([slugA]);
  // Another team's keys (the demo key) are not listed.
  await expect(page.locator('table#keys tr[data-key-name]').filter({ hasText: 'demo' })).toHaveCount(0);

  // Creating a gateway key for team A works, and the key works through the gateway.
  const keyName = `e2e-lead-${uniqueSuffix()}`;
  const secret = await ui.createKey(keyName, 'gateway', slugA);
  expect(secret).toMatch(/^kt_gk_/);
  await expect(ui.keyRow(keyName)).toContainText(slugA);
  await expect(ui.keyRow(keyName).locator('.status')).toHaveText('active');
  await ui.shot('lead-key-created');
  const gw = gatewayWithKey(request, secret);
  await expect
    .poll(async () => (await gw.chat(uniqueModel())).status(), { timeout: 10_000, intervals: [250, 500, 1_000] })
    .toBe(200);

  // Users and provider secrets are for org admins.
  for (const path of ['/settings/users', '/settings/secrets']) {
    const res = await page.goto(path);
    expect(res?.status(), path).toBe(403);
    await expect(page.getByText(FORBIDDEN_TEXT)).toBeVisible();
    await expect(page.locator('table#users, table#secrets, form#invite-user, form#put-secret')).toHaveCount(0);
    await kt.settle();
  }
  await ui.shot('lead-users-forbidden');

  // Teams: only team A, read-only.
  await ui.visit('/settings/teams', 'lead-teams');
  await expect(page.locator('section.team')).toHaveCount(1);
  await expect(ui.teamSection(slugA)).toBeVisible();
  await expect(ui.teamSection(slugB)).toHaveCount(0);
  await expect(ui.teamSection(slugA).locator('table.members')).toContainText(email);
  await expect(page.locator('form#create-team')).toHaveCount(0);
  await expect(page.locator('details')).toHaveCount(0);

  // Cost Center: team A's budget only, no allocation form.
  await ui.visit('/cost', 'lead-cost');
  await expect(page.locator(`table#budgets tr[data-team="${slugA}"]`)).toHaveCount(1);
  await expect(page.locator(`table#budgets tr[data-team="${slugB}"]`)).toHaveCount(0);
  await expect(page.locator('table#budgets tr[data-team]')).toHaveCount(1);
  await expect(page.locator('form#allocate-form')).toHaveCount(0);
  const csv = await (await page.request.get('/cost/export.csv?range=month')).text();
  const budgetLines = csv.split(/\r?\n/).slice(csv.split(/\r?\n/).indexOf('') + 2).filter((l) => l !== '');
  expect(budgetLines.map((l) => l.split(',')[0])).toEqual([slugA]);

  // A forged post for another team is refused by the server.
  await ui.visit('/settings/keys');
  const form = page.locator('form#create-key');
  await form.locator('select[name="team_id"]').evaluate((sel, id) => {
    const opt = document.createElement('option');
    opt.value = id;
    opt.textContent = 'forged';
    sel.appendChild(opt);
    (sel as HTMLSelectElement).value = id;
  }, 'no-such-team-e2e');
  await form.locator('input[name="name"]').fill(`e2e-forged-${uniqueSuffix()}`);
  await ui.submit(form.getByRole('button', { name: 'Create key' }));
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.secret()).toHaveCount(0);
});

test('a viewer without a team lands on the Cost Center and sees no Dashboard or Settings', async ({
  page,
  kt,
  ui,
  consoleGuard,
}) => {
  consoleGuard.allow(FAILED_LOAD);
  const email = uniqueEmail('viewer');
  await kt.signIn();
  const password = await ui.inviteUser(email, 'viewer');
  await kt.signOut();
  await kt.expectSignedOut();

  await kt.openLogin();
  await kt.submitLogin(email, password);
  // The sign-in form sends everyone to "/"; a viewer's Dashboard redirects to the Cost Center.
  await expect(page, 'a viewer lands on the Cost Center after signing in').toHaveURL((u) => u.pathname === '/cost');
  await kt.settle();
  await ui.shot('viewer-after-sign-in');
  await expect(ui.heading('Cost Center')).toBeVisible();
  await expect(ui.role()).toHaveText('Viewer');
  expect(await ui.topNavLabels()).toEqual(['Cost Center', 'API']);
  await expect(ui.topNav().locator('a[href="/"]')).toHaveCount(0);
  // An org-wide viewer reads every team's costs, but allocates nothing.
  await expect(page.locator('table#budgets tr[data-team="demo"]')).toHaveCount(1);
  await expect(page.locator('form#allocate-form')).toHaveCount(0);
  await ui.shot('viewer-cost');

  // The Dashboard sends viewers to the Cost Center.
  await page.goto('/');
  await kt.expectPath('/cost');
  await kt.settle();

  const res = await page.goto('/settings/keys');
  expect(res?.status()).toBe(403);
  await expect(page.getByText(FORBIDDEN_TEXT)).toBeVisible();
  await expect(page.locator('form#create-key')).toHaveCount(0);
  await kt.settle();
  await ui.shot('viewer-keys-forbidden');

  await ui.visit('/api-reference', 'viewer-api');
  await expect(ui.heading('API reference')).toBeVisible();
});

// ---------------------------------------------------------------------------------------------
// Sign-in throttling

test('after 5 wrong passwords the account is locked, even for the right password', async ({
  page,
  kt,
  ui,
  consoleGuard,
}) => {
  consoleGuard.allow(/Failed to load resource: the server responded with a status of 4\d\d/);
  // A fresh account: the demo admin must stay usable for other tests.
  const email = uniqueEmail('throttle');
  await kt.signIn();
  const password = await ui.inviteUser(email, 'viewer');
  await kt.signOut();
  await kt.expectSignedOut();

  for (let i = 1; i <= 5; i++) {
    await kt.openLogin();
    await kt.submitLogin(email, `${password}-wrong-${i}`);
    await expect(page).toHaveURL(/\/login\?error=invalid/);
    await expect(page.getByRole('alert')).toContainText('Invalid email or password');
  }
  await ui.shot('login-invalid');

  await kt.openLogin();
  await kt.submitLogin(email, password);
  await expect(page).toHaveURL(/\/login\?error=throttled/);
  await expect(page.getByRole('alert')).toContainText('Too many failed sign-ins');
  await ui.shot('login-throttled');

  // Not signed in.
  await page.goto('/cost');
  await kt.expectPath('/login');

  // Other accounts are not affected.
  await kt.signIn();
});

// ---------------------------------------------------------------------------------------------
// Privacy: nothing leaves this machine

test('no page requests anything from another host', async ({ page, kt, ui }) => {
  const urls: string[] = [];
  page.on('request', (req) => urls.push(req.url()));

  await kt.signIn();
  await kt.settle();
  await expect(kt.requestsChart().locator('svg').first()).toBeVisible({ timeout: 15_000 });
  await ui.visit('/?range=7d');
  const href = await page.locator('table#fleet tr[data-gateway="demo"] td a').first().getAttribute('href');
  for (const path of [
    href!,
    '/cost',
    '/cost?range=30d',
    '/settings/keys',
    '/settings/teams',
    '/settings/users',
    '/settings/secrets',
    '/settings/templates',
    '/settings/templates?name=std',
    '/api-reference',
  ]) {
    await ui.visit(path);
    await expect(page.locator('main h1')).toBeVisible();
  }
  // A form post too (the key is org-wide and harmless).
  await ui.createKey(`e2e-local-${uniqueSuffix()}`, 'access', '');
  // And client-side navigation.
  await ui.topNav().getByRole('link', { name: 'Dashboard' }).click();
  await kt.expectPath('/');
  await kt.settle();
  await kt.signOut();
  await kt.expectSignedOut();

  expect(urls.length).toBeGreaterThan(10);
  const foreign = urls.filter((u) => {
    const url = new URL(u);
    if (url.protocol === 'data:' || url.protocol === 'blob:') return false;
    return !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  });
  expect(foreign, `requests to other hosts:\n${foreign.join('\n')}`).toEqual([]);
  // The gateway port is not contacted by the pages either (the console is all they talk to).
  expect(urls.filter((u) => u.startsWith(GATEWAY_URL))).toEqual([]);
});

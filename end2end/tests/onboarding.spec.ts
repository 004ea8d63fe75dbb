import type { Locator, Page } from '@playwright/test';
import {
  cellByHeader,
  consoleTest as test,
  expect,
  ConsoleUi,
  escapeRegExp,
  signInElsewhere,
  uniqueEmail,
  uniqueSlug,
  uniqueSuffix,
} from './fixtures';
import { STEPS, field, form, requestRow, sendRequest, watchRequestPage } from './onboarding-helpers';

// Onboarding and the fleet, with JavaScript on: the request form (each bad field gets its own
// message, the entered values are kept), the approval queue, the provisioning steps on the
// request's page, the gateway key shown once to the requester, the key answering through the new
// team's gateway, the gateway on /gateways (runner, health, filters, link to its page), and what a
// team lead and a member may do (request, but not approve; a rejection with its reason).
//
// Every test files requests for its own team slug (and environment), so tests do not depend on
// each other's requests, teams or gateways.

/** Provisioning starts a gateway process (`kt serve`); the page refreshes itself meanwhile. */
const PROVISIONING_TIMEOUT = 20_000;

// ---------------------------------------------------------------------------------------------
// Helpers

interface RequestFields {
  team_name: string;
  team_slug: string;
  lead_email?: string;
  template?: 'exp' | 'reg' | 'std';
  monthly_budget: string;
  models?: string;
  environment?: string;
  use_case?: string;
}

/** Fills the request form; fields left out keep what the form shows. */
async function fillRequest(page: Page, f: RequestFields): Promise<void> {
  await field(page, 'team_name').fill(f.team_name);
  await field(page, 'team_slug').fill(f.team_slug);
  if (f.lead_email !== undefined) await field(page, 'lead_email').fill(f.lead_email);
  if (f.template !== undefined) await field(page, 'template').selectOption(f.template);
  await field(page, 'monthly_budget').fill(f.monthly_budget);
  if (f.models !== undefined) await field(page, 'models').fill(f.models);
  if (f.environment !== undefined) await field(page, 'environment').fill(f.environment);
  if (f.use_case !== undefined) await field(page, 'use_case').fill(f.use_case);
}

/** Files a valid request from /onboarding and returns its id (the browser is on its page). */
async function fileRequest(page: Page, ui: ConsoleUi, f: RequestFields): Promise<string> {
  await ui.visit('/onboarding');
  await expect(ui.heading('Onboarding')).toBeVisible();
  await fillRequest(page, f);
  await sendRequest(page, ui);
  await expect(page).toHaveURL(/\/onboarding\/[^/?#]+$/);
  await ui.expectFlashOk(`Requested team ${f.team_slug}: an org admin will review it.`);
  return new URL(page.url()).pathname.split('/').pop()!;
}

function statusBadge(page: Page): Locator {
  return page.locator('#request-status');
}

function step(page: Page, name: string): Locator {
  return page.locator(`ol#steps li[data-step="${name}"]`);
}

function stepBadge(page: Page, name: string): Locator {
  return step(page, name).locator('.badge');
}

function fieldBox(page: Page, name: string): Locator {
  return page.locator(`div.field[data-field="${name}"]`);
}

function fieldError(page: Page, name: string): Locator {
  return page.locator(`p.form-error#f-${name}-error`);
}

function fleetRow(page: Page, gateway: string): Locator {
  return page.locator(`table#fleet tr[data-gateway="${gateway}"]`);
}

/** A cell of a fleet row by its column header. */
function fleetCell(page: Page, row: Locator, header: string): Promise<Locator> {
  return cellByHeader(page, 'table#fleet', row, header);
}

// ---------------------------------------------------------------------------------------------
// The form

test('a request with bad fields is refused field by field, keeps the entered values, and is sent once fixed', async ({
  page,
  kt,
  ui,
}) => {
  const slug = uniqueSlug('e2e-onb');
  await kt.signIn();
  await kt.settle();
  await ui.topNav().getByRole('link', { name: 'Onboarding' }).click();
  await kt.expectPath('/onboarding');
  await expect(ui.heading('Onboarding')).toBeVisible();
  await expect(page).toHaveTitle('Onboarding · kt');
  await kt.settle();

  // Defaults: the signed-in email, std, gpt-4o-mini, production.
  await expect(field(page, 'lead_email')).toHaveValue(kt.creds.email);
  await expect(field(page, 'template')).toHaveValue('std');
  await expect(field(page, 'template').locator('option')).toHaveText(['exp', 'reg', 'std']);
  await expect(field(page, 'models')).toHaveValue('gpt-4o-mini');
  await expect(field(page, 'environment')).toHaveValue('production');
  await expect(page.locator('div.field.invalid')).toHaveCount(0);

  // What the templates do.
  const templates = page.locator('details.templates');
  await templates.locator('summary').click();
  for (const name of ['exp', 'reg', 'std']) {
    const t = templates.locator(`[data-template="${name}"]`);
    await expect(t.locator('h3')).toHaveText(name);
    await expect(t.locator('li').first()).toBeVisible();
  }
  await expect(templates.locator('[data-template="std"]')).toContainText('Template `std`');

  // Browser validation off, so that the server checks every field.
  await form(page).evaluate((f: HTMLFormElement) => {
    f.noValidate = true;
  });
  await fillRequest(page, {
    team_name: '',
    team_slug: 'Bad Slug',
    lead_email: 'not-an-email',
    template: 'reg',
    monthly_budget: '0',
    models: 'gpt"4o',
    environment: 'Prod Env',
    use_case: 'Summarise support tickets',
  });
  await sendRequest(page, ui);
  await kt.expectPath('/onboarding');
  await ui.shot('onboarding-refused');

  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText('Not sent: 6 field(s) need attention (marked below).');
  const expected: Record<string, string | RegExp> = {
    team_name: 'Give the team a name.',
    team_slug: 'invalid slug `Bad Slug`: use 1-63 lowercase letters, digits and dashes, starting with a letter',
    lead_email: '"not-an-email" is not an email address (expected name@example.com)',
    monthly_budget: 'A positive amount of USD per month, e.g. 500.',
    models: '"gpt\\"4o" is not a model name.',
    environment: '`environment` "Prod Env" is not valid: use 1 to 40 lowercase letters, digits or `-`',
  };
  for (const [name, message] of Object.entries(expected)) {
    await expect(fieldBox(page, name), `${name} is marked invalid`).toHaveClass(/(^|\s)invalid(\s|$)/);
    await expect(fieldError(page, name)).toBeVisible();
    await expect(fieldError(page, name)).toContainText(message);
    // Inside its own field.
    await expect(fieldBox(page, name).locator(`#f-${name}-error`)).toHaveCount(1);
  }
  // Only those.
  await expect(page.locator('div.field.invalid')).toHaveCount(6);
  await expect(fieldBox(page, 'template')).not.toHaveClass(/(^|\s)invalid(\s|$)/);
  await expect(fieldBox(page, 'use_case')).not.toHaveClass(/(^|\s)invalid(\s|$)/);
  await expect(page.locator('p.form-error')).toHaveCount(6);

  // The entered values are kept.
  await expect(field(page, 'team_name')).toHaveValue('');
  await expect(field(page, 'team_slug')).toHaveValue('Bad Slug');
  await expect(field(page, 'lead_email')).toHaveValue('not-an-email');
  await expect(field(page, 'template')).toHaveValue('reg');
  await expect(field(page, 'monthly_budget')).toHaveValue('0');
  await expect(field(page, 'models')).toHaveValue('gpt"4o');
  await expect(field(page, 'environment')).toHaveValue('Prod Env');
  await expect(field(page, 'use_case')).toHaveValue('Summarise support tickets');
  // Nothing was filed.
  await expect(page.locator('table#mine tr[data-slug="Bad Slug"], table#queue tr[data-slug="Bad Slug"]')).toHaveCount(0);

  // Fixed (browser validation on again after the reload): sent, and its page shows it pending.
  await fillRequest(page, {
    team_name: `Support ${slug}`,
    team_slug: slug,
    lead_email: 'lead@example.com',
    monthly_budget: '250',
    models: 'gpt-4o-mini, claude-*',
    environment: 'production',
  });
  await sendRequest(page, ui);
  await expect(page).toHaveURL(/\/onboarding\/[^/?#]+$/);
  await ui.expectFlashOk(`Requested team ${slug}: an org admin will review it. This page shows its progress.`);
  await expect(ui.heading(new RegExp(`^\\s*Team Support ${escapeRegExp(slug)}\\s*pending\\s*$`))).toBeVisible();
  await expect(statusBadge(page)).toHaveText('pending');
  await expect(page).toHaveTitle('Onboarding request · kt');
  await expect(ui.crumbs().getByRole('link', { name: 'Onboarding' })).toHaveAttribute('href', '/onboarding');
  const facts = page.locator('dl.facts');
  await expect(facts).toContainText(slug);
  await expect(facts).toContainText('reg');
  await expect(facts).toContainText('$250.00');
  await expect(facts).toContainText('gpt-4o-mini, claude-*');
  await expect(facts).toContainText('production');
  await expect(facts).toContainText('lead@example.com');
  await expect(page.getByText('Summarise support tickets')).toBeVisible();
  await expect(page.locator('#secret-once')).toHaveCount(0);
  await expect(page.locator('#gateway-usage')).toHaveCount(0);
  await ui.shot('onboarding-sent');

  // Listed under "Your requests" and in the queue; the form is empty again.
  await ui.visit('/onboarding');
  const mine = requestRow(page, 'mine', slug);
  await expect(mine).toHaveCount(1);
  await expect(mine.locator('.badge')).toHaveText('pending');
  await expect(mine).toContainText(`Support ${slug}`);
  await expect(mine).toContainText('$250.00');
  await expect(requestRow(page, 'queue', slug)).toHaveCount(1);
  await expect(page.locator('div.field.invalid')).toHaveCount(0);
  await expect(field(page, 'team_slug')).toHaveValue('');
  await expect(field(page, 'lead_email')).toHaveValue(kt.creds.email);
});

test('the browser checks the required fields and the slug pattern before sending', async ({ page, kt, ui }) => {
  await kt.signIn();
  await ui.visit('/onboarding');
  await field(page, 'team_name').fill('');
  await form(page).getByRole('button', { name: 'Send request' }).click();
  // Still on the form, nothing posted, the first empty required field is reported by the browser.
  await kt.expectPath('/onboarding');
  expect(await field(page, 'team_name').evaluate((el: HTMLInputElement) => el.validity.valueMissing)).toBe(true);
  await expect(ui.flash()).toHaveCount(0);
  // A slug the pattern refuses.
  await field(page, 'team_slug').fill('Bad Slug');
  expect(await field(page, 'team_slug').evaluate((el: HTMLInputElement) => el.validity.patternMismatch)).toBe(true);
});

// ---------------------------------------------------------------------------------------------
// Approval, provisioning, the key and the fleet

test('an approved request provisions a gateway whose key answers, listed on Gateways and filterable', async ({
  page,
  kt,
  ui,
  request,
}) => {
  const slug = uniqueSlug('e2e-onb');
  const env = `env-${uniqueSuffix()}`;
  const gatewayName = `${slug}-${env}`;

  await kt.signIn();
  const id = await fileRequest(page, ui, {
    team_name: `Team ${slug}`,
    team_slug: slug,
    template: 'std',
    monthly_budget: '100',
    models: 'gpt-4o-mini',
    environment: env,
  });
  await expect(statusBadge(page)).toHaveText('pending');
  for (const s of STEPS) await expect(stepBadge(page, s), `step ${s}`).toHaveText('pending');
  await expect(page.locator('ol#steps').getByRole('button')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Approve' })).toBeVisible();

  // The queue.
  await ui.visit('/onboarding');
  await expect(page.locator('#queue-title')).toHaveText(/^Approval queue \(\d+\)$/);
  const queued = requestRow(page, 'queue', slug);
  await expect(queued).toHaveAttribute('data-request', id);
  await expect(queued.locator('.badge')).toHaveText('pending');
  await expect(queued.getByRole('link', { name: 'Reject' })).toHaveAttribute('href', `/onboarding?reject=${id}`);
  await ui.shot('onboarding-queue');
  const loads = watchRequestPage(page, id);
  await ui.submit(queued.getByRole('button', { name: 'Approve' }));

  // The request's page follows the pipeline (it refreshes itself while provisioning).
  await kt.expectPath(`/onboarding/${id}`);
  await expect(statusBadge(page)).toHaveText('ready', { timeout: PROVISIONING_TIMEOUT });
  await kt.settle();
  await ui.shot('onboarding-ready');
  for (const s of STEPS) await expect(stepBadge(page, s), `step ${s}`).toHaveText('done');
  await expect(step(page, 'team')).toContainText(`created team ${slug}`);
  await expect(step(page, 'config')).toContainText(`version 1 of ${env} from template std (lint clean)`);
  await expect(step(page, 'wallet')).toContainText('$100 allocated');
  await expect(step(page, 'key')).toContainText(`created ${slug}-${env} gateway (onboarding)`);
  await expect(step(page, 'gateway')).toContainText(`${gatewayName} running at http://127.0.0.1:`);
  await expect(page.locator('dl.facts')).toContainText(kt.creds.email);
  await expect(page.getByRole('button', { name: /^(Approve|Retry)$/ })).toHaveCount(0);

  // The key, once, to the requester.
  const secret = page.locator('#secret-once');
  await expect(
    secret,
    `the requester sees the gateway key once the request is ready (loads of the page: ${JSON.stringify(loads)})`,
  ).toBeVisible();
  const key = ((await secret.textContent()) ?? '').trim();
  expect(key).toMatch(/^kt_gk_\S+$/);
  await expect(page.getByText('Store it now: it is shown only this once.')).toBeVisible();

  // "Use it": the gateway's base URL.
  const usage = page.locator('#gateway-usage');
  await expect(usage).toContainText('from openai import OpenAI');
  const m = /base_url="(http:\/\/127\.0\.0\.1:\d+\/v1)"/.exec((await usage.textContent()) ?? '');
  expect(m, `a base_url in #gateway-usage: ${await usage.textContent()}`).toBeTruthy();
  const base = m![1];
  expect(base).not.toContain(':3101/');

  // The key answers through the new gateway, for the requested model only.
  const chat = (model: string) =>
    request.post(`${base}/chat/completions`, {
      headers: { Authorization: `Bearer ${key}` },
      data: { model, messages: [{ role: 'user', content: 'hi' }] },
      timeout: 15_000,
      failOnStatusCode: false,
    });
  const ok = await chat('gpt-4o-mini');
  const okBody = await ok.text();
  expect(ok.status(), `gpt-4o-mini through ${base}: ${okBody}`).toBe(200);
  const content = JSON.parse(okBody).choices?.[0]?.message?.content;
  expect(typeof content === 'string' && content.length > 0, `choices[0].message.content in ${okBody}`).toBe(true);
  const refused = await chat('gpt-4o');
  expect(refused.status(), `gpt-4o through ${base}: ${await refused.text()}`).toBe(409);

  // Gone after a reload.
  await page.reload();
  await kt.settle();
  await expect(statusBadge(page)).toHaveText('ready');
  await expect(page.locator('#secret-once')).toHaveCount(0);
  await expect(page.locator('#gateway-usage')).toContainText(base);

  // Decided requests list it as ready.
  await ui.visit('/onboarding');
  await expect(requestRow(page, 'queue', slug)).toHaveCount(0);
  await expect(requestRow(page, 'recent', slug).locator('.badge')).toHaveText('ready');
  await expect(requestRow(page, 'mine', slug).locator('.badge')).toHaveText('ready');

  // The fleet.
  await ui.topNav().getByRole('link', { name: 'Gateways' }).click();
  await kt.expectPath('/gateways');
  await expect(ui.heading('Gateways')).toBeVisible();
  await expect(page).toHaveTitle('Gateways · kt');
  await kt.settle();
  const row = fleetRow(page, gatewayName);
  await expect(row).toHaveCount(1);
  await expect(await fleetCell(page, row, 'Team')).toHaveText(slug);
  await expect(await fleetCell(page, row, 'Environment')).toHaveText(env);
  await expect(await fleetCell(page, row, 'Runner')).toHaveText('local (kt serve)');
  await expect(await fleetCell(page, row, 'Address')).toContainText('127.0.0.1:');
  await expect(await fleetCell(page, row, 'Status')).toHaveText('healthy');
  await expect(await fleetCell(page, fleetRow(page, 'demo'), 'Runner')).toHaveText('bundled (kt demo)');
  await expect(page.locator('#fleet-counts')).toHaveText(/^\s*\d+ gateway\(s\): \d+ healthy, \d+ stale, \d+ down\s*$/);
  const total = Number(/(\d+) gateway/.exec((await page.locator('#fleet-counts').textContent()) ?? '')![1]);
  expect(total).toBeGreaterThanOrEqual(2);
  await ui.shot('gateways');

  // Filters narrow the table (a GET form: the address carries them).
  const filters = page.locator('form#fleet-filters');
  await filters.locator('select[name="environment"]').selectOption(env);
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(new RegExp(`/gateways\\?.*environment=${escapeRegExp(env)}`));
  await expect(page.locator('table#fleet tbody tr')).toHaveCount(1);
  await expect(fleetRow(page, gatewayName)).toHaveCount(1);
  await expect(filters.locator('select[name="environment"]')).toHaveValue(env);
  // The counts are of the whole fleet.
  await expect(page.locator('#fleet-counts')).toContainText(`${total} gateway(s)`);
  await kt.settle();
  await ui.shot('gateways-filtered');

  await ui.visit(`/gateways?team=${encodeURIComponent(slug)}&status=healthy`);
  await expect(page.locator('table#fleet tbody tr')).toHaveCount(1);
  await expect(fleetRow(page, gatewayName)).toHaveCount(1);
  await ui.visit(`/gateways?environment=${encodeURIComponent(env)}&status=down`);
  await expect(page.locator('table#fleet')).toHaveCount(0);
  await expect(page.getByText('No gateway matches.')).toBeVisible();

  // The row links to the gateway's page, whose breadcrumb leads back.
  await ui.visit(`/gateways?environment=${encodeURIComponent(env)}`);
  const link = fleetRow(page, gatewayName).locator('td').first().getByRole('link', { name: gatewayName });
  const href = await link.getAttribute('href');
  expect(href).toMatch(/^\/gateways\/[^/]+$/);
  await link.click();
  await kt.expectPath(href!);
  await expect(ui.heading(`Gateway ${gatewayName}`)).toBeVisible();
  await kt.settle();
  await ui.crumbs().getByRole('link', { name: 'Gateways' }).click();
  await kt.expectPath('/gateways');
  await expect(fleetRow(page, gatewayName)).toHaveCount(1);
  await kt.settle();
});

// ---------------------------------------------------------------------------------------------
// Roles

test('a team lead requests a team but cannot approve; the admin rejects it with a reason the lead sees', async ({
  page,
  kt,
  ui,
  browser,
}) => {
  const leadTeam = uniqueSlug('e2e-lt');
  const slug = uniqueSlug('e2e-onb');
  const email = uniqueEmail('onb-lead');
  const reason = `Use the shared team for now (${uniqueSuffix()})`;

  await kt.signIn();
  await ui.createTeam(leadTeam);
  const password = await ui.inviteUser(email, 'team_lead', leadTeam);

  const lead = await signInElsewhere(browser, email, password);
  try {
    await expect(lead.ui.topNav().getByRole('link', { name: 'Onboarding' })).toBeVisible();
    const id = await fileRequest(lead.page, lead.ui, {
      team_name: `Team ${slug}`,
      team_slug: slug,
      template: 'exp',
      monthly_budget: '75',
    });
    await expect(statusBadge(lead.page)).toHaveText('pending');
    await expect(lead.page.locator('dl.facts')).toContainText(email);
    await expect(lead.page.getByRole('button', { name: /^(Approve|Retry)$/ })).toHaveCount(0);

    await lead.ui.visit('/onboarding');
    await expect(field(lead.page, 'lead_email')).toHaveValue(email);
    const mine = requestRow(lead.page, 'mine', slug);
    await expect(mine).toHaveAttribute('data-request', id);
    await expect(mine.locator('.badge')).toHaveText('pending');
    await expect(lead.page.locator('#queue-title, table#queue, table#recent')).toHaveCount(0);
    await expect(lead.page.getByText(/Approval queue/)).toHaveCount(0);
    await expect(lead.page.getByRole('button', { name: 'Approve' })).toHaveCount(0);
    await expect(lead.page.getByRole('link', { name: 'Reject' })).toHaveCount(0);
    await lead.ui.shot('lead-onboarding');

    // The admin rejects it: the link asks for a reason first.
    await ui.visit('/onboarding');
    const queued = requestRow(page, 'queue', slug);
    await expect(queued).toContainText(email);
    await queued.getByRole('link', { name: 'Reject' }).click();
    await expect(page).toHaveURL(new RegExp(`/onboarding\\?reject=${escapeRegExp(id)}$`));
    const dialog = page.getByRole('alertdialog');
    await expect(dialog).toContainText(`Reject the request for team Team ${slug} (${slug})?`);
    await kt.settle();
    const reasonInput = dialog.locator('input[name="reason"]');
    await expect(reasonInput).toHaveAttribute('required', '');
    await ui.shot('reject-confirm');
    // Without a reason the browser does not send it.
    await dialog.getByRole('button', { name: 'Reject' }).click();
    expect(await reasonInput.evaluate((el: HTMLInputElement) => el.validity.valueMissing)).toBe(true);
    await expect(page).toHaveURL(/\?reject=/);
    await reasonInput.fill(reason);
    await ui.submit(dialog.getByRole('button', { name: 'Reject' }));
    await kt.expectPath('/onboarding');
    await ui.expectFlashOk(`Rejected ${slug}.`);
    await expect(page.getByRole('alertdialog')).toHaveCount(0);
    await expect(requestRow(page, 'queue', slug)).toHaveCount(0);
    await expect(requestRow(page, 'recent', slug).locator('.badge')).toHaveText('rejected');

    // The lead sees it rejected, with the reason.
    await lead.ui.visit(`/onboarding/${id}`);
    await expect(statusBadge(lead.page)).toHaveText('rejected');
    await expect(lead.page.locator('#request-reason')).toHaveText(reason);
    await expect(lead.page.locator('dl.facts')).toContainText(kt.creds.email);
    await expect(lead.page.locator('#secret-once')).toHaveCount(0);
    await lead.ui.shot('lead-rejected');
    await lead.ui.visit('/onboarding');
    await expect(requestRow(lead.page, 'mine', slug).locator('.badge')).toHaveText('rejected');
    lead.expectNoErrors();
  } finally {
    await lead.close();
  }
});

test('a member cannot approve their own request; the admin approves it and only the member gets the key', async ({
  page,
  kt,
  ui,
  browser,
}) => {
  const memberTeam = uniqueSlug('e2e-mt');
  const slug = uniqueSlug('e2e-onb');
  const email = uniqueEmail('onb-member');

  await kt.signIn();
  await ui.createTeam(memberTeam);
  const password = await ui.inviteUser(email, 'member', memberTeam);

  const member = await signInElsewhere(browser, email, password);
  try {
    const id = await fileRequest(member.page, member.ui, {
      team_name: `Team ${slug}`,
      team_slug: slug,
      monthly_budget: '20',
    });
    await expect(member.page.getByRole('button', { name: /^(Approve|Retry)$/ })).toHaveCount(0);
    await member.ui.visit('/onboarding');
    await expect(requestRow(member.page, 'mine', slug).locator('.badge')).toHaveText('pending');
    await expect(member.page.locator('#queue-title, table#queue')).toHaveCount(0);
    await expect(member.page.getByRole('button', { name: 'Approve' })).toHaveCount(0);

    // An approval posted anyway is refused by the server.
    await member.page.request.post('/api/approve_onboarding', { form: { id } });
    await member.ui.visit('/onboarding');
    await expect(member.ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
    await expect(member.ui.flash()).toContainText('only org admins approve requests');
    await expect(requestRow(member.page, 'mine', slug).locator('.badge')).toHaveText('pending');

    // The admin approves from the request's page; the admin does not get the key.
    await ui.visit(`/onboarding/${id}`);
    await expect(statusBadge(page)).toHaveText('pending');
    await ui.submit(page.getByRole('button', { name: 'Approve' }));
    await ui.expectFlashOk(`Approved ${slug}: provisioning runs now.`);
    await expect(statusBadge(page)).toHaveText('ready', { timeout: PROVISIONING_TIMEOUT });
    await expect(page.locator('#gateway-usage')).toBeVisible();
    await expect(page.locator('#secret-once')).toHaveCount(0);

    // The member does, once.
    await member.ui.visit(`/onboarding/${id}`);
    await expect(statusBadge(member.page)).toHaveText('ready');
    const secret = member.page.locator('#secret-once');
    await expect(secret).toHaveText(/^\s*kt_gk_\S+\s*$/);
    const key = ((await secret.textContent()) ?? '').trim();
    await member.page.reload();
    await member.kt.settle();
    await expect(member.page.locator('#secret-once')).toHaveCount(0);

    // It answers through the team's gateway.
    const usage = (await member.page.locator('#gateway-usage').textContent()) ?? '';
    const base = /base_url="(http:\/\/127\.0\.0\.1:\d+)\/v1"/.exec(usage)?.[1];
    expect(base, `a base_url in #gateway-usage: ${usage}`).toBeTruthy();
    const res = await member.page.request.post(`${base}/v1/chat/completions`, {
      headers: { Authorization: `Bearer ${key}` },
      data: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      failOnStatusCode: false,
    });
    expect(res.status(), await res.text()).toBe(200);
    member.expectNoErrors();
  } finally {
    await member.close();
  }
});

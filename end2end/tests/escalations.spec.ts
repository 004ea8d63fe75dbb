import type { APIRequestContext, Browser, Locator, Page } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import {
  consoleTest as test,
  expect,
  ConsoleUi,
  FORBIDDEN_TEXT,
  KtConsole,
  escapeRegExp,
  uniqueEmail,
  uniqueSlug,
  uniqueSuffix,
} from './fixtures';
import { ADMIN_ACTOR, CONFIG, CONFIG_SWITCH_TIMEOUT, MODEL, POLICY, REASON } from './escalation-config';

// Escalations (SPEC §10) and the audit log, with JavaScript on.
//
// Every test onboards its own team through the API (an org-wide access key made in Settings ›
// Keys): a request from the `std` template and its approval, which starts the team's managed
// gateway, then a new configuration version whose `pii_detection` policy escalates prompts
// carrying an email address (the gateway switches to it within seconds). Templates are not used
// for this: they cannot be deleted, and the onboarding tests expect only the shipped ones.
// A held request answers 409 with an escalation id; the console lists it for the team's
// reviewers (never the prompt), who claim, approve or deny it; an approved request passes once
// when resent with X-Escalation-Id.
// Every claim and decision is in the audit log, which filters and exports as CSV.

/** A page answered 403 shows up in Chromium's console as a failed resource load. */
const FAILED_LOAD = /Failed to load resource: the server responded with a status of 40[34]/;


// ---------------------------------------------------------------------------------------------
// Setup through the API

interface Team {
  slug: string;
  teamId: string;
  /** The onboarding request that created the team. */
  requestId: string;
  gatewayUrl: string;
  gatewayKey: string;
}

/** An org-wide access key, made in Settings › Keys (its secret is shown once). */
async function adminToken(ui: ConsoleUi): Promise<{ name: string; token: string }> {
  const name = `e2e-esc-${uniqueSuffix()}`;
  const token = await ui.createKey(name, 'access', '');
  expect(token).toMatch(/^kt_ak_\S+$/);
  return { name, token };
}

/**
 * Onboards a fresh team (template `std`, approved at once: its gateway runs), then makes a
 * configuration that escalates prompts with an email address its current version.
 */
async function onboardEscalatingTeam(request: APIRequestContext, token: string): Promise<Team> {
  const slug = uniqueSlug('e2e-esc');
  const auth = { Authorization: `Bearer ${token}` };
  const filed = await request.post('/v1/onboarding/requests', {
    headers: auth,
    data: {
      team_name: `Team ${slug}`,
      team_slug: slug,
      lead_email: 'lead@example.com',
      template: 'std',
      monthly_budget: 50,
      models: [MODEL],
    },
    failOnStatusCode: false,
  });
  expect(filed.status(), `POST /v1/onboarding/requests: ${await filed.text()}`).toBe(201);
  const requestId: string = (await filed.json()).id;
  const approved = await request.post(`/v1/onboarding/requests/${requestId}/approve`, {
    headers: auth,
    failOnStatusCode: false,
    timeout: 20_000,
  });
  const body = await approved.text();
  expect(approved.status(), `approving ${requestId}: ${body}`).toBe(200);
  const json = JSON.parse(body);
  expect(json.status, `the pipeline's result: ${body}`).toBe('ready');
  expect(json.gateway_url, body).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(json.gateway_key, body).toMatch(/^kt_gk_\S+$/);
  const config = await request.post('/v1/configurations', {
    headers: auth,
    data: { team_id: json.team_id, environment: json.environment, content: CONFIG, message: 'e2e: escalate emails' },
    failOnStatusCode: false,
  });
  expect(config.status(), `POST /v1/configurations: ${await config.text()}`).toBe(201);
  return { slug, teamId: json.team_id, requestId, gatewayUrl: json.gateway_url, gatewayKey: json.gateway_key };
}

interface Reply {
  status: number;
  body: string;
  json: any;
}

/** `POST /v1/chat/completions` through the team's gateway, with `X-Escalation-Id` when given. */
async function chat(request: APIRequestContext, team: Team, content: string, escalationId?: string): Promise<Reply> {
  const headers: Record<string, string> = { Authorization: `Bearer ${team.gatewayKey}` };
  if (escalationId) headers['X-Escalation-Id'] = escalationId;
  const res = await request.post(`${team.gatewayUrl}/v1/chat/completions`, {
    headers,
    data: { model: MODEL, messages: [{ role: 'user', content }] },
    timeout: 15_000,
    failOnStatusCode: false,
  });
  const body = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(body);
  } catch {
    // Checked by the callers.
  }
  return { status: res.status(), body, json };
}

/** A prompt with a fresh email address (the policy holds it). */
function promptWithEmail(): { prompt: string; email: string } {
  const email = `jane.${uniqueSuffix()}@example.com`;
  return { prompt: `Forward the quarterly summary to ${email} before Friday`, email };
}

/**
 * Sends a prompt the policy holds: 409 `escalation_required`; returns the escalation id. Until the
 * team's gateway runs the escalating version, the template's `pii-protection` policy blocks the
 * prompt (nothing is recorded): it is sent again meanwhile.
 */
async function hold(request: APIRequestContext, team: Team, prompt: string): Promise<string> {
  const deadline = Date.now() + CONFIG_SWITCH_TIMEOUT;
  let r = await chat(request, team, prompt);
  while (r.status === 409 && r.json?.error?.policy === 'pii-protection' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    r = await chat(request, team, prompt);
  }
  expect(r.status, `a prompt with an email address through ${team.gatewayUrl}: ${r.body}`).toBe(409);
  expect(r.json?.error?.code, r.body).toBe('escalation_required');
  expect(r.json?.error?.policy, r.body).toBe(POLICY);
  const id = r.json?.error?.escalation_id;
  expect(typeof id === 'string' && id.length > 0, `error.escalation_id in ${r.body}`).toBe(true);
  expect(r.json.error.message, r.body).toContain(`X-Escalation-Id: ${id}`);
  return id;
}

/** The answer to a resend the escalation does not (or no longer) allow. */
function expectRefusedRetry(r: Reply, what: string): void {
  expect(r.status, `${what}: ${r.body}`).toBe(409);
  expect(r.json?.error?.code, `${what}: ${r.body}`).toBe('input_blocked');
  expect(r.json?.error?.message, `${what}: ${r.body}`).toContain('does not allow this request');
}

/** A chat completion; `soft`: a failure is reported but the test goes on. */
function expectCompletion(r: Reply, what: string, soft = false): void {
  const check = soft ? expect.soft : expect;
  check(r.status, `${what}: ${r.body}`).toBe(200);
  const content = r.json?.choices?.[0]?.message?.content;
  check(typeof content === 'string' && content.length > 0, `choices[0].message.content in ${r.body}`).toBe(true);
}

// ---------------------------------------------------------------------------------------------
// The Escalations page

function tab(page: Page, status: string): Locator {
  return page.locator(`nav.tabs a[data-tab="${status}"]`);
}

/** The count a tab shows: "pending (3)" → 3. */
async function tabCount(page: Page, status: string): Promise<number> {
  const text = ((await tab(page, status).textContent()) ?? '').trim();
  const m = new RegExp(`^${status} \\((\\d+)\\)$`).exec(text);
  expect(m, `the ${status} tab reads "${status} (N)": "${text}"`).toBeTruthy();
  return Number(m![1]);
}

async function tabCounts(page: Page): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const s of ['pending', 'claimed', 'resolved', 'expired']) counts[s] = await tabCount(page, s);
  return counts;
}

function escalationRow(page: Page, id: string): Locator {
  return page.locator(`table#escalations tr[data-escalation="${id}"]`);
}

/** A cell of an escalation row by its column header. */
async function cell(page: Page, row: Locator, header: string): Promise<Locator> {
  const headers = (await page.locator('table#escalations thead th').allTextContents()).map((h) => h.trim());
  const i = headers.indexOf(header);
  expect(i, `a "${header}" column in table#escalations (headers: ${JSON.stringify(headers)})`).toBeGreaterThanOrEqual(0);
  return row.locator('td').nth(i);
}

/** Checks what a row shows: team, policy, reason, entities, model, status, reviewer, note. */
async function expectRow(
  page: Page,
  id: string,
  want: { team: string; status: string; reviewer?: string; note?: string },
): Promise<Locator> {
  const row = escalationRow(page, id);
  await expect(row, `escalation ${id} is listed`).toHaveCount(1);
  await expect(await cell(page, row, 'Team')).toHaveText(want.team);
  await expect(await cell(page, row, 'Policy')).toHaveText(POLICY);
  await expect(await cell(page, row, 'Reason')).toHaveText(REASON);
  await expect(await cell(page, row, 'Entities')).toHaveText('email');
  await expect(await cell(page, row, 'Model')).toHaveText(MODEL);
  await expect((await cell(page, row, 'Status')).locator('.badge')).toHaveText(want.status);
  await expect(await cell(page, row, 'Reviewer')).toHaveText(want.reviewer ?? '');
  await expect(await cell(page, row, 'Note')).toHaveText(want.note ?? '');
  return row;
}

/** Neither the prompt nor the email address is anywhere in the page (text or HTML). */
async function expectNoPrompt(page: Page, prompt: string, email: string): Promise<void> {
  await expect(page.locator('body')).not.toContainText(email);
  const html = await page.content();
  expect(html.includes(email), 'the email address of the held prompt is not in the page HTML').toBe(false);
  expect(html.includes(prompt), 'the held prompt is not in the page HTML').toBe(false);
}

/** Opens /escalations through the navigation. */
async function openEscalations(page: Page, kt: KtConsole, ui: ConsoleUi): Promise<void> {
  await ui.topNav().getByRole('link', { name: 'Escalations' }).click();
  await kt.expectPath('/escalations');
  await expect(ui.heading('Escalations')).toBeVisible();
  await expect(page).toHaveTitle('Escalations · kt');
  await kt.settle();
}

function confirmDialog(page: Page): Locator {
  return page.getByRole('alertdialog');
}

// ---------------------------------------------------------------------------------------------
// Another user, in a browser context of their own

interface Elsewhere {
  page: Page;
  kt: KtConsole;
  ui: ConsoleUi;
  expectNoErrors: () => void;
  close: () => Promise<void>;
}

/**
 * Signs someone else in, in a fresh browser context (own cookies), with JavaScript on; fails
 * (`expectNoErrors`) on an uncaught error or a console error not matching `allowed`.
 */
async function signInElsewhere(browser: Browser, email: string, password: string, allowed: RegExp[] = []): Promise<Elsewhere> {
  const context = await browser.newContext({ baseURL: test.info().project.use.baseURL });
  const page = await context.newPage();
  const thrown: string[] = [];
  const logged: string[] = [];
  page.on('pageerror', (err) => thrown.push(`pageerror: ${err.stack ?? err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !allowed.some((re) => re.test(msg.text()))) logged.push(`console.error: ${msg.text()}`);
  });
  const kt = new KtConsole(page, true, { email, password }, { allow: () => {}, pageErrors: () => thrown });
  const ui = new ConsoleUi(page, kt);
  await ui.signInAs(email, password, '/');
  return {
    page,
    kt,
    ui,
    expectNoErrors: () => expect([...thrown, ...logged], `errors reported by the pages seen as ${email}`).toEqual([]),
    close: () => context.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Review

test('a held request is queued without its prompt; claimed, unclaimed and approved, it passes once when resent', async ({
  page,
  kt,
  ui,
  request,
}) => {
  await kt.signIn();
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token);

  // Without an email address the team's gateway answers; with one, the request is held.
  expectCompletion(await chat(request, team, 'Summarise the quarterly report'), 'a prompt without personal data');
  const { prompt, email } = promptWithEmail();
  const id = await hold(request, team, prompt);
  // Resent before anyone approved it: still refused.
  expectRefusedRetry(await chat(request, team, prompt, id), 'resent while pending');

  // The queue.
  await openEscalations(page, kt, ui);
  await expect(tab(page, 'pending')).toHaveAttribute('aria-current', 'page');
  await expect(page.locator('nav.tabs a')).toHaveText([/^pending \(\d+\)$/, /^claimed \(\d+\)$/, /^resolved \(\d+\)$/, /^expired \(\d+\)$/]);
  const before = await tabCounts(page);
  expect(before.pending, 'the held request counts as pending').toBeGreaterThanOrEqual(1);
  let row = await expectRow(page, id, { team: team.slug, status: 'pending' });
  await expect(row.getByRole('button', { name: 'Claim' })).toBeVisible();
  await expect(row.getByRole('link', { name: 'Approve' })).toHaveAttribute(
    'href',
    `/escalations?status=pending&confirm=${id}&outcome=approved`,
  );
  await expect(row.getByRole('link', { name: 'Deny' })).toHaveAttribute(
    'href',
    `/escalations?status=pending&confirm=${id}&outcome=denied`,
  );
  await expectNoPrompt(page, prompt, email);
  await ui.shot('escalations-pending');

  // Claim: it moves to the claimed tab, with the admin as reviewer.
  await ui.submit(row.getByRole('button', { name: 'Claim' }));
  await expect(page).toHaveURL(/\/escalations\?status=claimed$/);
  await ui.expectFlashOk('Claimed: you review it.');
  await expect(tab(page, 'claimed')).toHaveAttribute('aria-current', 'page');
  row = await expectRow(page, id, { team: team.slug, status: 'claimed', reviewer: ADMIN_ACTOR });
  expect(await tabCounts(page)).toEqual({ ...before, pending: before.pending - 1, claimed: before.claimed + 1 });
  await expect(row.getByRole('button', { name: 'Unclaim' })).toBeVisible();
  await expect(row.getByRole('button', { name: 'Claim', exact: true })).toHaveCount(0);
  await expectNoPrompt(page, prompt, email);
  await ui.shot('escalations-claimed');

  // Unclaim: back in the queue, nobody reviewing it.
  await ui.submit(row.getByRole('button', { name: 'Unclaim' }));
  await kt.expectPath('/escalations');
  await ui.expectFlashOk('Back in the queue.');
  await expect(tab(page, 'pending')).toHaveAttribute('aria-current', 'page');
  row = await expectRow(page, id, { team: team.slug, status: 'pending' });
  expect(await tabCounts(page)).toEqual(before);

  // Approve asks first, with an optional note; Cancel leads back.
  await row.getByRole('link', { name: 'Approve' }).click();
  await expect(page).toHaveURL(new RegExp(`/escalations\\?status=pending&confirm=${escapeRegExp(id)}&outcome=approved$`));
  const dialog = confirmDialog(page);
  await expect(dialog).toContainText(`Approve the request held by ${POLICY} (${REASON}, ${MODEL}) for team ${team.slug}?`);
  await expectNoPrompt(page, prompt, email);
  await kt.settle();
  await expect(dialog.getByRole('link', { name: 'Cancel' })).toHaveAttribute('href', '/escalations?status=pending');
  const note = dialog.getByLabel('Note (optional)');
  await expect(note).toHaveValue('');
  await expect(note).not.toHaveAttribute('required', /.*/);
  await ui.shot('escalations-confirm-approve');
  const noteText = `Customer asked for it (${uniqueSuffix()})`;
  await note.fill(noteText);
  await ui.submit(dialog.getByRole('button', { name: 'Approve' }));
  await expect(page).toHaveURL(/\/escalations\?status=resolved$/);
  await ui.expectFlashOk(`Approved: the caller may resend the same request once with X-Escalation-Id: ${id}.`);
  await expect(confirmDialog(page)).toHaveCount(0);
  await expect(tab(page, 'resolved')).toHaveAttribute('aria-current', 'page');
  row = await expectRow(page, id, { team: team.slug, status: 'approved', reviewer: ADMIN_ACTOR, note: noteText });
  await expect(row.getByRole('button')).toHaveCount(0);
  await expect(row.getByRole('link')).toHaveCount(0);
  expect(await tabCounts(page)).toEqual({ ...before, pending: before.pending - 1, resolved: before.resolved + 1 });
  await ui.shot('escalations-approved');

  // Other content with that id does not pass (and does not use it up) …
  expectRefusedRetry(
    await chat(request, team, `Forward the yearly summary to ${email} before Friday`, id),
    'other content with the approved escalation id',
  );
  // … the same request with the id passes, once. (Soft: the checks after it show whether the
  // team's gateway let it through, whatever answered it.)
  expectCompletion(await chat(request, team, prompt, id), 'the approved request resent with X-Escalation-Id', true);
  expectRefusedRetry(await chat(request, team, prompt, id), 'the approved request resent a second time');
  // Without the id it is held again, as a new escalation.
  const again = await hold(request, team, prompt);
  expect(again).not.toBe(id);

  // The row says when the approval was used.
  await page.reload();
  await kt.settle();
  await expect(await cell(page, escalationRow(page, id), 'Status')).toContainText(/approved\s*used\s+\d/);
  await ui.visit('/escalations');
  await expectRow(page, again, { team: team.slug, status: 'pending' });
  await expect(escalationRow(page, id)).toHaveCount(0);
});

test('a denied escalation stays refused when resent with its id', async ({ page, kt, ui, request }) => {
  await kt.signIn();
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token);
  const { prompt, email } = promptWithEmail();
  const id = await hold(request, team, prompt);

  await openEscalations(page, kt, ui);
  const before = await tabCounts(page);
  const row = await expectRow(page, id, { team: team.slug, status: 'pending' });
  await row.getByRole('link', { name: 'Deny' }).click();
  await expect(page).toHaveURL(new RegExp(`/escalations\\?status=pending&confirm=${escapeRegExp(id)}&outcome=denied$`));
  const dialog = confirmDialog(page);
  await expect(dialog).toContainText(`Deny the request held by ${POLICY} (${REASON}, ${MODEL}) for team ${team.slug}?`);
  await expectNoPrompt(page, prompt, email);
  await kt.settle();
  await expect(dialog.getByRole('button', { name: 'Approve' })).toHaveCount(0);
  const noteText = `No customer data to vendors (${uniqueSuffix()})`;
  await dialog.getByLabel('Note (optional)').fill(noteText);
  await ui.shot('escalations-confirm-deny');
  await ui.submit(dialog.getByRole('button', { name: 'Deny' }));
  await expect(page).toHaveURL(/\/escalations\?status=resolved$/);
  await ui.expectFlashOk('Denied: the request stays refused.');
  await expect(confirmDialog(page)).toHaveCount(0);
  const resolved = await expectRow(page, id, { team: team.slug, status: 'denied', reviewer: ADMIN_ACTOR, note: noteText });
  await expect(resolved.getByRole('button')).toHaveCount(0);
  expect(await tabCounts(page)).toEqual({ ...before, pending: before.pending - 1, resolved: before.resolved + 1 });
  await ui.shot('escalations-denied');

  expectRefusedRetry(await chat(request, team, prompt, id), 'the denied request resent with X-Escalation-Id');

  // Cancel on a confirmation changes nothing.
  const other = await hold(request, team, promptWithEmail().prompt);
  await ui.visit(`/escalations?status=pending&confirm=${other}&outcome=approved`);
  await expect(confirmDialog(page)).toContainText(`Approve the request held by ${POLICY}`);
  await confirmDialog(page).getByRole('link', { name: 'Cancel' }).click();
  await expect(page).toHaveURL(/\/escalations\?status=pending$/);
  await expect(confirmDialog(page)).toHaveCount(0);
  await expectRow(page, other, { team: team.slug, status: 'pending' });
});

// ---------------------------------------------------------------------------------------------
// Roles

test("a team member sees the team's queue without review actions; another team's member sees none of it", async ({
  page,
  kt,
  ui,
  request,
  browser,
}) => {
  await kt.signIn();
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token);
  const { prompt, email: promptEmail } = promptWithEmail();
  const id = await hold(request, team, prompt);

  const otherTeam = uniqueSlug('e2e-esc-other');
  await ui.createTeam(otherTeam);
  const memberEmail = uniqueEmail('esc-member');
  const outsiderEmail = uniqueEmail('esc-outsider');
  const memberPassword = await ui.inviteUser(memberEmail, 'member', team.slug);
  const outsiderPassword = await ui.inviteUser(outsiderEmail, 'member', otherTeam);

  // A member of the team: the queue, but neither Claim nor Approve nor Deny; no audit log.
  const member = await signInElsewhere(browser, memberEmail, memberPassword, [FAILED_LOAD]);
  try {
    await expect(member.ui.topNav().getByRole('link', { name: 'Escalations' })).toBeVisible();
    await expect(member.ui.topNav().getByRole('link', { name: 'Audit log' })).toHaveCount(0);
    await openEscalations(member.page, member.kt, member.ui);
    const row = await expectRow(member.page, id, { team: team.slug, status: 'pending' });
    await expect(row.getByRole('button')).toHaveCount(0);
    await expect(row.getByRole('link')).toHaveCount(0);
    await expect(member.page.getByRole('button', { name: /^(Claim|Unclaim|Approve|Deny)$/ })).toHaveCount(0);
    await expectNoPrompt(member.page, prompt, promptEmail);
    await member.ui.shot('member-escalations');

    // A confirmation address shows no decision form to a member.
    await member.ui.visit(`/escalations?status=pending&confirm=${id}&outcome=approved`);
    await expect(confirmDialog(member.page)).toHaveCount(0);

    // A claim posted anyway is refused by the server.
    await member.page.request.post('/api/claim_escalation', { form: { id, claim: 'true' } });
    await member.ui.visit('/escalations');
    await expect(member.ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
    await expect(member.ui.flash()).toContainText('your role cannot review escalations');
    await expectRow(member.page, id, { team: team.slug, status: 'pending' });

    // The audit log is for admins and team leads.
    await member.ui.visit('/audit');
    await expect(member.page.getByText(FORBIDDEN_TEXT)).toBeVisible();
    await expect(member.page.locator('table#audit')).toHaveCount(0);
    member.expectNoErrors();
  } finally {
    await member.close();
  }

  // A member of another team: nothing of this team, in any tab.
  const outsider = await signInElsewhere(browser, outsiderEmail, outsiderPassword);
  try {
    await openEscalations(outsider.page, outsider.kt, outsider.ui);
    expect(await tabCounts(outsider.page)).toEqual({ pending: 0, claimed: 0, resolved: 0, expired: 0 });
    await expect(outsider.page.getByText('No pending escalation.')).toBeVisible();
    await expect(outsider.page.locator(`tr[data-escalation="${id}"]`)).toHaveCount(0);
    await expect(outsider.page.locator('main')).not.toContainText(team.slug);
    await outsider.ui.shot('outsider-escalations');
    for (const status of ['claimed', 'resolved', 'expired']) {
      await outsider.ui.visit(`/escalations?status=${status}`);
      await expect(outsider.page.getByText(`No ${status} escalation.`)).toBeVisible();
    }
    // Even with its id in the address.
    await outsider.ui.visit(`/escalations?status=pending&confirm=${id}&outcome=approved`);
    await expect(confirmDialog(outsider.page)).toHaveCount(0);
    await expect(outsider.page.locator('main')).not.toContainText(team.slug);
    outsider.expectNoErrors();
  } finally {
    await outsider.close();
  }

  // Nothing changed it: still pending, unclaimed, for the admin.
  await ui.visit('/escalations');
  await expectRow(page, id, { team: team.slug, status: 'pending' });
});

test("a team lead of the team reviews its escalations and reads the team's audit log", async ({
  page,
  kt,
  ui,
  request,
  browser,
}) => {
  await kt.signIn();
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token);
  const id = await hold(request, team, promptWithEmail().prompt);
  const leadEmail = uniqueEmail('esc-lead');
  const leadPassword = await ui.inviteUser(leadEmail, 'team_lead', team.slug);

  const lead = await signInElsewhere(browser, leadEmail, leadPassword);
  try {
    await openEscalations(lead.page, lead.kt, lead.ui);
    const row = await expectRow(lead.page, id, { team: team.slug, status: 'pending' });
    await lead.ui.submit(row.getByRole('button', { name: 'Claim' }));
    await lead.ui.expectFlashOk('Claimed: you review it.');
    await expectRow(lead.page, id, { team: team.slug, status: 'claimed', reviewer: `${leadEmail} (console)` });

    await lead.ui.topNav().getByRole('link', { name: 'Audit log' }).click();
    await lead.kt.expectPath('/audit');
    await expect(lead.ui.heading('Audit log')).toBeVisible();
    await lead.kt.settle();
    const claim = lead.page.locator('table#audit tr[data-action="escalation.claim"]', { hasText: id });
    await expect(claim).toHaveCount(1);
    await expect(claim).toContainText(`${leadEmail} (console)`);
    // Only the lead's team: every row names it.
    const teams = await lead.page.locator('table#audit tbody tr td:nth-child(5)').allTextContents();
    expect(teams.length).toBeGreaterThan(0);
    expect(new Set(teams.map((t) => t.trim())), 'the team of every audit entry a team lead sees').toEqual(new Set([team.slug]));
    await lead.ui.shot('lead-audit');
    lead.expectNoErrors();
  } finally {
    await lead.close();
  }

  // The admin sees who claimed it.
  await ui.visit('/escalations?status=claimed');
  await expectRow(page, id, { team: team.slug, status: 'claimed', reviewer: `${leadEmail} (console)` });
});

// ---------------------------------------------------------------------------------------------
// Audit log

test('the audit log lists claims and decisions with their actor, filters them and exports the filtered CSV', async ({
  page,
  kt,
  ui,
  request,
}) => {
  await kt.signIn();
  const { name: keyName, token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token);
  const id = await hold(request, team, promptWithEmail().prompt);

  // Claim and approve it in the console.
  await ui.visit('/escalations');
  await ui.submit(escalationRow(page, id).getByRole('button', { name: 'Claim' }));
  await ui.expectFlashOk('Claimed: you review it.');
  await escalationRow(page, id).getByRole('link', { name: 'Approve' }).click();
  await expect(page).toHaveURL(new RegExp(`confirm=${escapeRegExp(id)}&outcome=approved$`));
  await kt.settle();
  const noteText = `audited ${uniqueSuffix()}`;
  await confirmDialog(page).getByLabel('Note (optional)').fill(noteText);
  await ui.submit(confirmDialog(page).getByRole('button', { name: 'Approve' }));
  await ui.expectFlashOk('Approved:');

  // The whole log.
  await ui.topNav().getByRole('link', { name: 'Audit log' }).click();
  await kt.expectPath('/audit');
  await expect(ui.heading('Audit log')).toBeVisible();
  await expect(page).toHaveTitle('Audit log · kt');
  await kt.settle();
  await expect(page.locator('table#audit thead th')).toHaveText(['Time (UTC)', 'Actor', 'Action', 'Target', 'Team', 'Before', 'After']);
  const claim = page.locator('table#audit tr[data-action="escalation.claim"]', { hasText: id });
  const resolve = page.locator('table#audit tr[data-action="escalation.resolve"]', { hasText: id });
  for (const [row, action] of [
    [claim, 'escalation.claim'],
    [resolve, 'escalation.resolve'],
  ] as const) {
    await expect(row, `${action} of ${id}`).toHaveCount(1);
    const cells = row.locator('td');
    await expect(cells.nth(0)).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d/);
    await expect(cells.nth(1)).toHaveText(ADMIN_ACTOR);
    await expect(cells.nth(2)).toHaveText(action);
    await expect(cells.nth(3)).toHaveText(`escalation ${id}`);
    await expect(cells.nth(4)).toHaveText(team.slug);
  }
  await expect(resolve.locator('td').nth(6)).toContainText('approved');
  await expect(resolve.locator('td').nth(6)).toContainText(noteText);
  const onboarding = page.locator('table#audit tr[data-action="onboarding.approve"]', { hasText: team.requestId });
  await expect(onboarding).toHaveCount(1);
  await expect(onboarding.locator('td').nth(1)).toHaveText(new RegExp(`^${escapeRegExp(keyName)} \\(token \\S+\\)$`));
  await expect(page.getByRole('link', { name: 'Export CSV' })).toHaveAttribute('href', '/audit/export.csv?');
  await ui.shot('audit');

  // Filters: the admin's escalation changes of this team, in the last hour.
  const filters = page.locator('form#audit-filters');
  await filters.getByLabel('Actor').fill(ADMIN_ACTOR);
  await filters.getByLabel('Action').fill('escalation.');
  await filters.getByLabel('Team').selectOption(team.slug);
  await filters.getByLabel('Since').selectOption('1h');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/\/audit\?/);
  expect(Object.fromEntries(new URL(page.url()).searchParams)).toEqual({
    actor: ADMIN_ACTOR,
    action: 'escalation.',
    team: team.slug,
    since: '1h',
  });
  await kt.settle();
  const rows = page.locator('table#audit tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toHaveAttribute('data-action', 'escalation.resolve');
  await expect(rows.nth(1)).toHaveAttribute('data-action', 'escalation.claim');
  await expect(onboarding).toHaveCount(0);
  // The form keeps the filters.
  await expect(filters.getByLabel('Actor')).toHaveValue(ADMIN_ACTOR);
  await expect(filters.getByLabel('Action')).toHaveValue('escalation.');
  await expect(filters.getByLabel('Team')).toHaveValue(team.slug);
  await expect(filters.getByLabel('Since')).toHaveValue('1h');
  await ui.shot('audit-filtered');

  // The export follows the filters, and downloads what the table shows.
  const exportLink = page.locator('#audit-export');
  await expect(exportLink).toHaveText('Export CSV');
  const href = await exportLink.getAttribute('href');
  expect(href).toBe(
    `/audit/export.csv?actor=${encodeURIComponent(ADMIN_ACTOR).replace(/\(/g, '%28').replace(/\)/g, '%29')}&action=escalation.&team=${team.slug}&since=1h`,
  );
  const [download] = await Promise.all([page.waitForEvent('download'), exportLink.click()]);
  expect(download.suggestedFilename()).toBe('kt-audit.csv');
  const csv = await readFile((await download.path())!, 'utf8');
  const lines = csv.split(/\r?\n/).filter((l) => l !== '');
  expect(lines[0]).toBe('time_utc,actor,action,target,team,before,after');
  expect(lines.length, csv).toBe(3);
  expect(lines[1]).toContain(`${ADMIN_ACTOR},escalation.resolve,escalation ${id},${team.slug},`);
  expect(lines[1]).toContain(noteText);
  expect(lines[2]).toContain(`${ADMIN_ACTOR},escalation.claim,escalation ${id},${team.slug},`);
  expect(csv).not.toContain('onboarding.approve');

  // An exact action narrows it to one entry; an actor who did nothing, to none.
  await ui.visit(`/audit?action=escalation.claim&team=${team.slug}`);
  await expect(rows).toHaveCount(1);
  await expect(claim).toHaveCount(1);
  await ui.visit(`/audit?actor=${encodeURIComponent('nobody@example.com (console)')}&team=${team.slug}`);
  await expect(page.locator('table#audit')).toHaveCount(0);
  await expect(page.getByText('No change matches.')).toBeVisible();
});

import type { APIRequestContext, Locator, Page } from '@playwright/test';
import { consoleTest as test, expect, type ConsoleUi, uniqueSlug, uniqueSuffix } from './fixtures';
import { ADMIN_ACTOR, CONFIG, CONFIG_SWITCH_TIMEOUT, MODEL, POLICY, REASON } from './escalation-config';

// Escalations and the audit log without JavaScript: claiming, the confirmation step and the
// decision are plain form posts (post → redirect → get), the audit filter is a plain GET form and
// its export a plain download.
//
// As in escalations.spec.ts, every test onboards its own team through the API (an org-wide access
// key made in Settings › Keys; template `std`), then makes a configuration that escalates prompts
// with an email address the current version of the team's managed gateway.


interface Team {
  slug: string;
  gatewayUrl: string;
  gatewayKey: string;
}

/** An org-wide access key (Settings › Keys), a team onboarded from `std`, then the escalating config. */
async function setUp(ui: ConsoleUi, request: APIRequestContext): Promise<Team> {
  const token = await ui.createKey(`e2e-esc-${uniqueSuffix()}`, 'access', '');
  const auth = { Authorization: `Bearer ${token}` };
  const slug = uniqueSlug('e2e-esc');
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
  const approved = await request.post(`/v1/onboarding/requests/${(await filed.json()).id}/approve`, {
    headers: auth,
    failOnStatusCode: false,
    timeout: 20_000,
  });
  const body = await approved.text();
  expect(approved.status(), body).toBe(200);
  const json = JSON.parse(body);
  expect(json.status, body).toBe('ready');
  const config = await request.post('/v1/configurations', {
    headers: auth,
    data: { team_id: json.team_id, environment: json.environment, content: CONFIG, message: 'e2e: escalate emails' },
    failOnStatusCode: false,
  });
  expect(config.status(), `POST /v1/configurations: ${await config.text()}`).toBe(201);
  return { slug, gatewayUrl: json.gateway_url, gatewayKey: json.gateway_key };
}

async function chat(
  request: APIRequestContext,
  team: Team,
  content: string,
  escalationId?: string,
): Promise<{ status: number; body: string; json: any }> {
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

/** Sends a prompt with an email address: held (409 `escalation_required`); returns its id. */
async function hold(request: APIRequestContext, team: Team): Promise<{ id: string; prompt: string; email: string }> {
  const email = `jane.${uniqueSuffix()}@example.com`;
  const prompt = `Forward the quarterly summary to ${email} before Friday`;
  // Until the gateway runs the new version, the template's `pii-protection` blocks it (nothing is recorded).
  const deadline = Date.now() + CONFIG_SWITCH_TIMEOUT;
  let r = await chat(request, team, prompt);
  while (r.status === 409 && r.json?.error?.policy === 'pii-protection' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    r = await chat(request, team, prompt);
  }
  expect(r.status, r.body).toBe(409);
  expect(r.json?.error?.code, r.body).toBe('escalation_required');
  const id = r.json?.error?.escalation_id;
  expect(typeof id === 'string' && id.length > 0, `error.escalation_id in ${r.body}`).toBe(true);
  return { id, prompt, email };
}

function row(page: Page, id: string): Locator {
  return page.locator(`table#escalations tr[data-escalation="${id}"]`);
}

/** The cells of a row: held, team, policy, reason, entities, model, status, reviewer, note, actions. */
async function expectRow(page: Page, id: string, want: { team: string; status: string; reviewer?: string; note?: string }): Promise<void> {
  await expect(page.locator('table#escalations thead th')).toHaveText([
    'Held (UTC)',
    'Team',
    'Policy',
    'Reason',
    'Entities',
    'Model',
    'Status',
    'Reviewer',
    'Note',
    'Actions',
  ]);
  const cells = row(page, id).locator('td');
  await expect(cells.nth(1)).toHaveText(want.team);
  await expect(cells.nth(2)).toHaveText(POLICY);
  await expect(cells.nth(3)).toHaveText(REASON);
  await expect(cells.nth(4)).toHaveText('email');
  await expect(cells.nth(5)).toHaveText(MODEL);
  await expect(cells.nth(6).locator('.badge')).toHaveText(want.status);
  await expect(cells.nth(7)).toHaveText(want.reviewer ?? '');
  await expect(cells.nth(8)).toHaveText(want.note ?? '');
}

test('without JavaScript: claiming and approving an escalation are plain form posts, with a confirmation step', async ({
  page,
  kt,
  ui,
  request,
}) => {
  await kt.signIn();
  const team = await setUp(ui, request);
  const { id, prompt, email } = await hold(request, team);

  await ui.topNav().getByRole('link', { name: 'Escalations' }).click();
  await kt.expectPath('/escalations');
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await expect(ui.heading('Escalations')).toBeVisible();
  await expect(page.locator('nav.tabs a[data-tab="pending"]')).toHaveAttribute('aria-current', 'page');
  await expect(page.locator('nav.tabs a[data-tab="pending"]')).toHaveText(/^pending \(\d+\)$/);
  await expectRow(page, id, { team: team.slug, status: 'pending' });
  expect(await page.content()).not.toContain(email);
  await ui.shot('nojs-escalations');

  // Claim: a form post.
  await ui.submit(row(page, id).getByRole('button', { name: 'Claim' }));
  await expect(page).toHaveURL(/\/escalations\?status=claimed$/);
  await ui.expectFlashOk('Claimed: you review it.');
  await expect(page.locator('nav.tabs a[data-tab="claimed"]')).toHaveAttribute('aria-current', 'page');
  await expectRow(page, id, { team: team.slug, status: 'claimed', reviewer: ADMIN_ACTOR });

  // Approve: a link to the confirmation, then a form post with the note.
  await row(page, id).getByRole('link', { name: 'Approve' }).click();
  await expect(page).toHaveURL(new RegExp(`/escalations\\?status=claimed&confirm=${id}&outcome=approved$`));
  const dialog = page.getByRole('alertdialog');
  await expect(dialog).toContainText(`Approve the request held by ${POLICY} (${REASON}, ${MODEL}) for team ${team.slug}?`);
  expect(await page.content()).not.toContain(email);
  await ui.shot('nojs-confirm');
  const note = `checked by phone (${uniqueSuffix()})`;
  await dialog.getByLabel('Note (optional)').fill(note);
  await ui.submit(dialog.getByRole('button', { name: 'Approve' }));
  await expect(page).toHaveURL(/\/escalations\?status=resolved$/);
  await ui.expectFlashOk(`Approved: the caller may resend the same request once with X-Escalation-Id: ${id}.`);
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
  await expectRow(page, id, { team: team.slug, status: 'approved', reviewer: ADMIN_ACTOR, note });
  await expect(row(page, id).getByRole('button')).toHaveCount(0);

  // The approved request passes once. (Soft: the second resend below shows whether the team's
  // gateway let the first one through, whatever answered it.)
  const resent = await chat(request, team, prompt, id);
  expect.soft(resent.status, `the approved request resent with X-Escalation-Id: ${resent.body}`).toBe(200);
  const again = await chat(request, team, prompt, id);
  expect(again.status, again.body).toBe(409);
  expect(again.json?.error?.code, again.body).toBe('input_blocked');
});

test('without JavaScript: a denial is a form post, and the audit filter narrows the log and its export', async ({
  page,
  kt,
  ui,
  request,
}) => {
  await kt.signIn();
  const team = await setUp(ui, request);
  const { id, prompt } = await hold(request, team);

  // Deny straight from the queue (no claim first).
  await page.goto('/escalations');
  await row(page, id).getByRole('link', { name: 'Deny' }).click();
  await expect(page).toHaveURL(new RegExp(`/escalations\\?status=pending&confirm=${id}&outcome=denied$`));
  const dialog = page.getByRole('alertdialog');
  await expect(dialog).toContainText(`Deny the request held by ${POLICY} (${REASON}, ${MODEL}) for team ${team.slug}?`);
  await ui.submit(dialog.getByRole('button', { name: 'Deny' }));
  await expect(page).toHaveURL(/\/escalations\?status=resolved$/);
  await ui.expectFlashOk('Denied: the request stays refused.');
  await expectRow(page, id, { team: team.slug, status: 'denied', reviewer: ADMIN_ACTOR });
  const retry = await chat(request, team, prompt, id);
  expect(retry.status, retry.body).toBe(409);
  expect(retry.json?.error?.code, retry.body).toBe('input_blocked');

  // The audit log, filtered with the form (a GET).
  await ui.topNav().getByRole('link', { name: 'Audit log' }).click();
  await kt.expectPath('/audit');
  await expect(ui.heading('Audit log')).toBeVisible();
  await expect(page.locator('table#audit tr[data-action="escalation.resolve"]', { hasText: id })).toHaveCount(1);
  const filters = page.locator('form#audit-filters');
  await filters.getByLabel('Actor').fill(ADMIN_ACTOR);
  await filters.getByLabel('Action').fill('escalation.');
  await filters.getByLabel('Team').selectOption(team.slug);
  await filters.getByLabel('Since').selectOption('24h');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await kt.expectPath('/audit');
  expect(Object.fromEntries(new URL(page.url()).searchParams)).toEqual({
    actor: ADMIN_ACTOR,
    action: 'escalation.',
    team: team.slug,
    since: '24h',
  });
  const rows = page.locator('table#audit tbody tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute('data-action', 'escalation.resolve');
  const cells = rows.first().locator('td');
  await expect(cells.nth(1)).toHaveText(ADMIN_ACTOR);
  await expect(cells.nth(3)).toHaveText(`escalation ${id}`);
  await expect(cells.nth(4)).toHaveText(team.slug);
  await expect(cells.nth(6)).toContainText('denied');
  await expect(filters.getByLabel('Team')).toHaveValue(team.slug);
  await expect(filters.getByLabel('Since')).toHaveValue('24h');
  await ui.shot('nojs-audit-filtered');

  // The export link carries the filters; the CSV holds what the table shows.
  const href = await page.locator('#audit-export').getAttribute('href');
  expect(href).toBe(`/audit/export.csv?actor=admin%40kt.local%20%28console%29&action=escalation.&team=${team.slug}&since=24h`);
  const res = await page.request.get(href!);
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type'] ?? '').toContain('text/csv');
  const lines = (await res.text()).split(/\r?\n/).filter((l) => l !== '');
  expect(lines[0]).toBe('time_utc,actor,action,target,team,before,after');
  expect(lines.length, lines.join('\n')).toBe(2);
  expect(lines[1]).toContain(`,${ADMIN_ACTOR},escalation.resolve,escalation ${id},${team.slug},`);

  // A filter nothing matches.
  await filters.getByLabel('Action').fill('escalation.claim');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page.locator('table#audit')).toHaveCount(0);
  await expect(page.getByText('No change matches.')).toBeVisible();
});

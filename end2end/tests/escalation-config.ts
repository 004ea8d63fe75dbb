import type { APIRequestContext, Locator, Page } from '@playwright/test';
import {
  cellByHeader,
  ConsoleUi,
  escapeRegExp,
  expect,
  onboardThroughApi,
  uniqueSlug,
  uniqueSuffix,
} from './fixtures';

// What the escalation browser tests (with and without JavaScript) share: the team
// configurations (one that holds prompts with an email address, one that also keeps the prompt of
// a `content_filter` escalation for the team's reviewers), how the console names things, the
// setup through the API (an org-wide access key, a team onboarded from `std`, the escalating
// configuration), sending held requests, reading the Escalations table and naming a team's
// reviewers in Settings › Teams. Signing someone else in is `signInElsewhere` in fixtures.ts.

/** How the console records a console user's changes (claims, decisions). */
export function actor(email: string): string {
  return `${email} (console)`;
}

/** The policy of the team's configuration that holds prompts with an email address. */
export const POLICY = 'pii-review';
export const REASON = 'pii_detected:email';
export const MODEL = 'gpt-4o-mini';

/** The `content_filter` policy of PROMPT_CONFIG, which keeps the prompt for the reviewers. */
export const KEPT_POLICY = 'deal-review';
export const KEPT_KEYWORD = 'acquisition';
export const KEPT_REASON = `content_matched:${KEPT_KEYWORD}`;

/** A managed gateway switches to a new current version within 5 seconds (SPEC §8). */
export const CONFIG_SWITCH_TIMEOUT = 12_000;

/** The team's configuration: escalate prompts with an email address; one model. */
export const CONFIG = `policies:
  - name: ${POLICY}
    type: pii_detection
    action: escalate
    entities: [email]
  - name: models
    type: model_filter
    allowed_models: ["${MODEL}"]
    enabled: true
providers:
  targets:
    - id: openai
      provider: {kind: openai}
`;

/**
 * CONFIG plus a `content_filter` policy (default action: escalate) that keeps the prompt of the
 * requests it holds for the team's reviewers (`reviewers_see_prompt`); `pii-review` does not.
 */
export const PROMPT_CONFIG = `policies:
  - name: ${KEPT_POLICY}
    type: content_filter
    keywords: [${KEPT_KEYWORD}]
    reviewers_see_prompt: true
  - name: ${POLICY}
    type: pii_detection
    action: escalate
    entities: [email]
  - name: models
    type: model_filter
    allowed_models: ["${MODEL}"]
providers:
  targets:
    - id: openai
      provider: {kind: openai}
`;

// ---------------------------------------------------------------------------------------------
// Setup through the API

export interface Team {
  slug: string;
  teamId: string;
  /** The onboarding request that created the team. */
  requestId: string;
  gatewayUrl: string;
  gatewayKey: string;
}

/** An org-wide access key, made in Settings › Keys (its secret is shown once). */
export async function adminToken(ui: ConsoleUi): Promise<{ name: string; token: string }> {
  const name = `e2e-esc-${uniqueSuffix()}`;
  const token = await ui.createKey(name, 'access', '');
  expect(token).toMatch(/^kt_ak_\S+$/);
  return { name, token };
}

/**
 * Onboards a fresh team (template `std`, approved at once: its gateway runs), then makes
 * `config` (default: CONFIG, which escalates prompts with an email address) its current version.
 */
export async function onboardEscalatingTeam(request: APIRequestContext, token: string, config = CONFIG): Promise<Team> {
  const slug = uniqueSlug('e2e-esc');
  const auth = { Authorization: `Bearer ${token}` };
  const { requestId, approval } = await onboardThroughApi(request, auth, {
    team_name: `Team ${slug}`,
    team_slug: slug,
    lead_email: 'lead@example.com',
    template: 'std',
    monthly_budget: 50,
    models: [MODEL],
  });
  const created = await request.post('/v1/configurations', {
    headers: auth,
    data: { team_id: approval.team_id, environment: approval.environment, content: config, message: 'e2e: escalate' },
    failOnStatusCode: false,
  });
  expect(created.status(), `POST /v1/configurations: ${await created.text()}`).toBe(201);
  return {
    slug,
    teamId: approval.team_id,
    requestId,
    gatewayUrl: approval.gateway_url,
    gatewayKey: approval.gateway_key,
  };
}

export interface Reply {
  status: number;
  body: string;
  json: any;
}

/** `POST /v1/chat/completions` through the team's gateway, with `X-Escalation-Id` when given. */
export async function chat(request: APIRequestContext, team: Team, content: string, escalationId?: string): Promise<Reply> {
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

/** A prompt with a fresh email address (`pii-review` holds it). */
export function promptWithEmail(): { prompt: string; email: string } {
  const email = `jane.${uniqueSuffix()}@example.com`;
  return { prompt: `Forward the quarterly summary to ${email} before Friday`, email };
}

/**
 * A prompt `deal-review` of PROMPT_CONFIG holds (the keyword, no email address), with a fresh
 * code name that no page may show but the held-prompt panel of a reviewer.
 */
export function promptWithKeyword(): { prompt: string; secret: string } {
  const secret = `Project Heron-${uniqueSuffix()}`;
  return { prompt: `Draft the ${KEPT_KEYWORD} announcement for ${secret}, not public before Monday`, secret };
}

/**
 * Sends a prompt `policy` holds: 409 `escalation_required`; returns the escalation id. Until the
 * team's gateway runs the escalating version, the template's `pii-protection` policy blocks a
 * prompt with an email address (nothing is recorded): it is sent again meanwhile. (A prompt
 * without one is answered by the template's version: hold a prompt with an email address first.)
 */
export async function hold(request: APIRequestContext, team: Team, prompt: string, policy = POLICY): Promise<string> {
  const deadline = Date.now() + CONFIG_SWITCH_TIMEOUT;
  let r = await chat(request, team, prompt);
  while (r.status === 409 && r.json?.error?.policy === 'pii-protection' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    r = await chat(request, team, prompt);
  }
  expect(r.status, `a prompt ${policy} holds, through ${team.gatewayUrl}: ${r.body}`).toBe(409);
  expect(r.json?.error?.code, r.body).toBe('escalation_required');
  expect(r.json?.error?.policy, r.body).toBe(policy);
  const id = r.json?.error?.escalation_id;
  expect(typeof id === 'string' && id.length > 0, `error.escalation_id in ${r.body}`).toBe(true);
  expect(r.json.error.message, r.body).toContain(`X-Escalation-Id: ${id}`);
  return id;
}

// ---------------------------------------------------------------------------------------------
// The Escalations page

export function escalationRow(page: Page, id: string): Locator {
  return page.locator(`table#escalations tr[data-escalation="${id}"]`);
}

/** A cell of an escalation row by its column header. */
export function cell(page: Page, row: Locator, header: string): Promise<Locator> {
  return cellByHeader(page, 'table#escalations', row, header);
}

export interface RowWant {
  team: string;
  status: string;
  /** Who claimed or decided it (empty: nobody). */
  reviewer?: string;
  note?: string;
  /** The "Goes to" column: the team's reviewers' emails; default "org admins". */
  goesTo?: string;
  /** Default: the `pii-review` policy, its reason and entity. */
  policy?: string;
  reason?: string;
  entities?: string;
  /** The row carries the "prompt kept" badge (default: not). */
  promptKept?: boolean;
}

/**
 * Checks what a row shows: team, policy, reason, entities (and the "prompt kept" badge), model,
 * status, who it goes to, reviewer, note.
 */
export async function expectRow(page: Page, id: string, want: RowWant): Promise<Locator> {
  const row = escalationRow(page, id);
  await expect(row, `escalation ${id} is listed`).toHaveCount(1);
  await expect(await cell(page, row, 'Team')).toHaveText(want.team);
  await expect(await cell(page, row, 'Policy')).toHaveText(want.policy ?? POLICY);
  await expect(await cell(page, row, 'Reason')).toHaveText(want.reason ?? REASON);
  const entities = await cell(page, row, 'Entities');
  const badge = entities.locator('.badge', { hasText: 'prompt kept' });
  if (want.promptKept) {
    await expect(entities).toHaveText(new RegExp(`^\\s*${escapeRegExp(want.entities ?? 'email')}\\s*prompt kept\\s*$`));
    await expect(badge).toHaveCount(1);
  } else {
    await expect(entities).toHaveText(want.entities ?? 'email');
    await expect(badge).toHaveCount(0);
  }
  await expect(await cell(page, row, 'Model')).toHaveText(MODEL);
  await expect((await cell(page, row, 'Status')).locator('.badge')).toHaveText(want.status);
  const goesTo = await cell(page, row, 'Goes to');
  await expect(goesTo).toHaveClass(/(^|\s)routed-to(\s|$)/);
  await expect(goesTo).toHaveText(want.goesTo ?? 'org admins');
  await expect(await cell(page, row, 'Reviewer')).toHaveText(want.reviewer ?? '');
  await expect(await cell(page, row, 'Note')).toHaveText(want.note ?? '');
  return row;
}

/** The row offers no review action (neither Claim/Unclaim nor Approve/Deny). */
export async function expectNoReviewActions(row: Locator): Promise<void> {
  await expect(row.getByRole('button')).toHaveCount(0);
  await expect(row.getByRole('link')).toHaveCount(0);
  await expect(row.locator('form')).toHaveCount(0);
}

export function confirmDialog(page: Page): Locator {
  return page.getByRole('alertdialog');
}

/** The request text a reviewer reads in the confirmation (`reviewers_see_prompt`). */
export function heldPrompt(page: Page): Locator {
  return page.locator('figure.held-prompt pre#held-prompt');
}

/** None of `texts` (a held prompt, or a part of it) is anywhere in the page (text or HTML). */
export async function expectNotInPage(page: Page, ...texts: string[]): Promise<void> {
  await expect(page.locator('#held-prompt')).toHaveCount(0);
  const html = await page.content();
  for (const text of texts) {
    await expect(page.locator('body')).not.toContainText(text);
    expect(html.includes(text), `"${text}" is not in the page HTML`).toBe(false);
  }
}

/** The error flash the store's refusal of a claim or decision shows to someone who does not review. */
export function notReviewerMessage(reviewers: string[]): string {
  return reviewers.length > 0
    ? `this team's escalations go to its reviewers (${reviewers.join(', ')}); a team lead or an org admin can change them`
    : 'this team names no reviewers, so its escalations go to the org admins; a team lead or an org admin can name reviewers';
}

/** Posts a claim without the (absent) button, then opens the queue: the refusal is the flash. */
export async function claimAnyway(ui: ConsoleUi, id: string): Promise<void> {
  await ui.page.request.post('/api/claim_escalation', { form: { id, claim: 'true' } });
  await ui.visit('/escalations');
}

// ---------------------------------------------------------------------------------------------
// Settings › Teams: the team's reviewers

export const NO_REVIEWERS = 'Escalations go to: the org admins (this team names no reviewers)';

export function reviewersSummary(ui: ConsoleUi, slug: string): Locator {
  return ui.teamSection(slug).locator('p.reviewers-summary');
}

export function memberRow(ui: ConsoleUi, slug: string, email: string): Locator {
  return ui.teamSection(slug).locator(`table.members tr[data-member="${email}"]`);
}

/** The "Reviews escalations" cell of a member: "yes" and/or the Make reviewer / Stop reviewing button. */
export function reviewerCell(ui: ConsoleUi, slug: string, email: string): Locator {
  return memberRow(ui, slug, email).locator('td.reviewer');
}

/**
 * Clicks "Make reviewer" (`on`) or "Stop reviewing" for a member of the team on Settings › Teams
 * and checks the member's row flipped. Making a reviewer also checks the flash; stopping checks
 * only its start ("… no longer reviews"), which the caller completes.
 */
export async function setReviewer(ui: ConsoleUi, slug: string, email: string, on: boolean): Promise<void> {
  if (new URL(ui.page.url()).pathname !== '/settings/teams') await ui.visit('/settings/teams');
  const reviewer = reviewerCell(ui, slug, email);
  await ui.submit(reviewer.getByRole('button', { name: on ? 'Make reviewer' : 'Stop reviewing', exact: true }));
  await ui.kt.expectPath('/settings/teams');
  if (on) await ui.expectFlashOk(`${email} now reviews the team's escalations.`);
  else await ui.expectFlashOk(`${email} no longer reviews`);
  await expect(reviewer.getByRole('button')).toHaveText(on ? 'Stop reviewing' : 'Make reviewer');
  if (on) await expect(reviewer).toHaveText(/^\s*yes\s+Stop reviewing\s*$/);
  else await expect(reviewer).toHaveText(/^\s*Make reviewer\s*$/);
}

// ---------------------------------------------------------------------------------------------
// Another user, in a browser context of their own

import type { Locator, Page } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import {
  ADMIN_ACTOR,
  consoleTest as test,
  expect,
  ConsoleUi,
  FORBIDDEN_TEXT,
  KtConsole,
  escapeRegExp,
  uniqueEmail,
  uniqueSlug,
  uniqueSuffix,
  signInElsewhere,
} from './fixtures';
import {
  KEPT_KEYWORD,
  KEPT_POLICY,
  KEPT_REASON,
  MODEL,
  NO_REVIEWERS,
  POLICY,
  PROMPT_CONFIG,
  REASON,
  type Reply,
  actor,
  adminToken,
  cell,
  chat,
  claimAnyway,
  confirmDialog,
  escalationRow,
  expectNoReviewActions,
  expectNotInPage,
  expectRow,
  heldPrompt,
  hold,
  memberRow,
  notReviewerMessage,
  onboardEscalatingTeam,
  promptWithEmail,
  promptWithKeyword,
  reviewerCell,
  reviewersSummary,
  setReviewer,
} from './escalation-config';

// Escalations (SPEC §10) and the audit log, with JavaScript on.
//
// Every test onboards its own team through the API (an org-wide access key made in Settings ›
// Keys): a request from the `std` template and its approval, which starts the team's managed
// gateway, then a new configuration version whose `pii_detection` policy escalates prompts
// carrying an email address (the gateway switches to it within seconds). Templates are not used
// for this: they cannot be deleted, and the onboarding tests expect only the shipped ones.
// A held request answers 409 with an escalation id; the console lists it for the team (never the
// prompt, unless the policy keeps it for the reviewers), and it goes to the team's named reviewers
// (Settings › Teams), or to the org admins when the team names none: only they claim, approve or
// deny it; an approved request passes once when resent with X-Escalation-Id.
// Every claim and decision is in the audit log, which filters and exports as CSV.

/** A page answered 403 shows up in Chromium's console as a failed resource load. */
const FAILED_LOAD = /Failed to load resource: the server responded with a status of 40[34]/;

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

/** Neither the prompt nor the email address is anywhere in the page (text or HTML). */
async function expectNoPrompt(page: Page, prompt: string, email: string): Promise<void> {
  await expectNotInPage(page, email, prompt);
}

/** Opens /escalations through the navigation. */
async function openEscalations(page: Page, kt: KtConsole, ui: ConsoleUi): Promise<void> {
  await ui.topNav().getByRole('link', { name: 'Escalations' }).click();
  await kt.expectPath('/escalations');
  await expect(ui.heading('Escalations')).toBeVisible();
  await expect(page).toHaveTitle('Escalations · kt');
  await kt.settle();
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
  const member = await signInElsewhere(browser, memberEmail, memberPassword, { allowed: [FAILED_LOAD] });
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

    // A claim posted anyway is refused by the server: the team names no reviewers, so its
    // escalations go to the org admins (a member passes the role gate, not the team's routing).
    await claimAnyway(member.ui, id);
    await expect(member.ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
    await expect(member.ui.flash()).toHaveText(notReviewerMessage([]));
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

test("a team lead of the team, named its reviewer in Settings › Teams, reviews its escalations and reads the team's audit log", async ({
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

  // Being a team lead is not enough: the org admin names the lead a reviewer of the team.
  await ui.visit('/settings/teams');
  await expect(reviewersSummary(ui, team.slug)).toHaveText(NO_REVIEWERS);
  await setReviewer(ui, team.slug, leadEmail, true);
  await expect(reviewersSummary(ui, team.slug)).toHaveText(`Escalations go to: ${leadEmail}`);

  const lead = await signInElsewhere(browser, leadEmail, leadPassword);
  try {
    await openEscalations(lead.page, lead.kt, lead.ui);
    const row = await expectRow(lead.page, id, { team: team.slug, status: 'pending', goesTo: leadEmail });
    await lead.ui.submit(row.getByRole('button', { name: 'Claim' }));
    await lead.ui.expectFlashOk('Claimed: you review it.');
    await expectRow(lead.page, id, { team: team.slug, status: 'claimed', reviewer: actor(leadEmail), goesTo: leadEmail });

    // A team lead may change the team's reviewers (their own row offers "Stop reviewing").
    await lead.ui.visit('/settings/teams');
    await expect(reviewersSummary(lead.ui, team.slug)).toHaveText(`Escalations go to: ${leadEmail}`);
    await expect(reviewerCell(lead.ui, team.slug, leadEmail).getByRole('button')).toHaveText('Stop reviewing');

    await lead.ui.topNav().getByRole('link', { name: 'Audit log' }).click();
    await lead.kt.expectPath('/audit');
    await expect(lead.ui.heading('Audit log')).toBeVisible();
    await lead.kt.settle();
    const claim = lead.page.locator('table#audit tr[data-action="escalation.claim"]', { hasText: id });
    await expect(claim).toHaveCount(1);
    await expect(claim).toContainText(actor(leadEmail));
    // Naming the reviewer is audited too.
    const named = lead.page.locator('table#audit tr[data-action="team.reviewers"]');
    await expect(named).toHaveCount(1);
    await expect(named.locator('td').nth(1)).toHaveText(ADMIN_ACTOR);
    await expect(named.locator('td').nth(6)).toContainText(leadEmail);
    // Only the lead's team: every row names it.
    const teams = await lead.page.locator('table#audit tbody tr td:nth-child(5)').allTextContents();
    expect(teams.length).toBeGreaterThan(0);
    expect(new Set(teams.map((t) => t.trim())), 'the team of every audit entry a team lead sees').toEqual(new Set([team.slug]));
    await lead.ui.shot('lead-audit');
    lead.expectNoErrors();
  } finally {
    await lead.close();
  }

  // The admin sees who claimed it, and no longer decides on this team's escalations.
  await ui.visit('/escalations?status=claimed');
  const row = await expectRow(page, id, { team: team.slug, status: 'claimed', reviewer: actor(leadEmail), goesTo: leadEmail });
  await expectNoReviewActions(row);
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

// ---------------------------------------------------------------------------------------------
// Named reviewers, and prompts kept for them

test("Settings › Teams: an org admin names a team's reviewers and stops them; its escalations go to them, then back to the org admins", async ({
  page,
  kt,
  ui,
  request,
}) => {
  await kt.signIn();
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token);
  const id = await hold(request, team, promptWithEmail().prompt);
  // Emails sort as named: the console lists members and reviewers by email.
  const first = uniqueEmail('esc-rev-a');
  const second = uniqueEmail('esc-rev-b');
  const viewer = uniqueEmail('esc-viewer');
  await ui.inviteUser(first, 'member', team.slug);
  await ui.inviteUser(second, 'team_lead', team.slug);
  await ui.inviteUser(viewer, 'viewer', team.slug);
  const reviewersApi = async (): Promise<{ emails: string[]; routedTo: string }> => {
    const res = await request.get(`/v1/teams/${team.teamId}/reviewers`, {
      headers: { Authorization: `Bearer ${token}` },
      failOnStatusCode: false,
    });
    const body = await res.text();
    expect(res.status(), `GET /v1/teams/${team.teamId}/reviewers: ${body}`).toBe(200);
    const json = JSON.parse(body);
    return { emails: json.data.map((r: { email: string }) => r.email), routedTo: json.routed_to };
  };

  // No reviewers yet: the org admins decide. Members and leads may be named; a viewer may not.
  await ui.visit('/settings/teams');
  await expect(ui.teamSection(team.slug).locator('table.members thead th')).toHaveText([
    'Member',
    'Role',
    'Reviews escalations',
    'Actions',
  ]);
  await expect(reviewersSummary(ui, team.slug)).toHaveText(NO_REVIEWERS);
  for (const email of [first, second]) await expect(reviewerCell(ui, team.slug, email)).toHaveText(/^\s*Make reviewer\s*$/);
  await expect(memberRow(ui, team.slug, viewer).locator('td').nth(1)).toHaveText('Viewer');
  await expect(reviewerCell(ui, team.slug, viewer)).toHaveText('');
  await expect(reviewerCell(ui, team.slug, viewer).getByRole('button')).toHaveCount(0);
  expect(await reviewersApi()).toEqual({ emails: [], routedTo: 'org_admins' });
  await ui.shot('teams-no-reviewers');

  // Name the member: the team's escalations go to them, not to the org admin any more.
  await setReviewer(ui, team.slug, first, true);
  await expect(reviewersSummary(ui, team.slug)).toHaveText(`Escalations go to: ${first}`);
  await expect(reviewerCell(ui, team.slug, second)).toHaveText(/^\s*Make reviewer\s*$/);
  await expect(reviewerCell(ui, team.slug, viewer).getByRole('button')).toHaveCount(0);
  expect(await reviewersApi()).toEqual({ emails: [first], routedTo: 'team_reviewers' });
  await ui.shot('teams-reviewer-named');

  await ui.visit('/escalations');
  const row = await expectRow(page, id, { team: team.slug, status: 'pending', goesTo: first });
  await expectNoReviewActions(row);
  // Per row: the admin's controls are on the rows that go to the org admins, and only there.
  const perRow = await page.locator('table#escalations tbody tr').evaluateAll((rows) =>
    rows.map((r) => ({
      to: r.querySelector('td.routed-to')?.textContent?.trim() ?? '',
      claim: [...r.querySelectorAll('button')].some((b) => b.textContent?.trim() === 'Claim'),
    })),
  );
  for (const r of perRow) expect(r.claim, `a Claim button on a row that goes to "${r.to}"`).toBe(r.to === 'org admins');
  await ui.shot('escalations-routed-to-reviewer');
  // A confirmation address shows the admin no decision form, and a claim posted anyway is refused.
  await ui.visit(`/escalations?status=pending&confirm=${id}&outcome=approved`);
  await expect(confirmDialog(page)).toHaveCount(0);
  await claimAnyway(ui, id);
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toHaveText(notReviewerMessage([first]));
  await expectRow(page, id, { team: team.slug, status: 'pending', goesTo: first });

  // Two reviewers (the team lead too), then neither.
  await setReviewer(ui, team.slug, second, true);
  await expect(reviewersSummary(ui, team.slug)).toHaveText(`Escalations go to: ${first}, ${second}`);
  expect(await reviewersApi()).toEqual({ emails: [first, second], routedTo: 'team_reviewers' });
  await ui.visit('/escalations');
  await expectNoReviewActions(await expectRow(page, id, { team: team.slug, status: 'pending', goesTo: `${first}, ${second}` }));

  await setReviewer(ui, team.slug, first, false);
  await expect(ui.flash()).toHaveText(`${first} no longer reviews the team's escalations.`);
  await expect(reviewersSummary(ui, team.slug)).toHaveText(`Escalations go to: ${second}`);
  await setReviewer(ui, team.slug, second, false);
  await expect(ui.flash()).toHaveText(
    `${second} no longer reviews; the team names no reviewers, so its escalations go to the org admins.`,
  );
  await expect(reviewersSummary(ui, team.slug)).toHaveText(NO_REVIEWERS);
  expect(await reviewersApi()).toEqual({ emails: [], routedTo: 'org_admins' });

  // Back with the org admins: the admin claims it again.
  await ui.visit('/escalations');
  const back = await expectRow(page, id, { team: team.slug, status: 'pending' });
  await ui.submit(back.getByRole('button', { name: 'Claim' }));
  await ui.expectFlashOk('Claimed: you review it.');
  await expectRow(page, id, { team: team.slug, status: 'claimed', reviewer: ADMIN_ACTOR });
});

test('a named reviewer reads the prompt a content_filter policy keeps, approves it, and the prompt is erased; nobody else sees it', async ({
  page,
  kt,
  ui,
  request,
  browser,
}) => {
  await kt.signIn();
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token, PROMPT_CONFIG);
  // A prompt with an email address waits for the new version (`pii-review` keeps no prompt) …
  const { prompt: piiPrompt, email: piiEmail } = promptWithEmail();
  const piiId = await hold(request, team, piiPrompt);
  // … then `deal-review` holds one with its keyword, and keeps it for the reviewers.
  const { prompt, secret } = promptWithKeyword();
  const keptId = await hold(request, team, prompt, KEPT_POLICY);
  expect(keptId).not.toBe(piiId);

  const reviewerEmail = uniqueEmail('esc-reviewer');
  const memberEmail = uniqueEmail('esc-member');
  const reviewerPassword = await ui.inviteUser(reviewerEmail, 'member', team.slug);
  const memberPassword = await ui.inviteUser(memberEmail, 'member', team.slug);
  await setReviewer(ui, team.slug, reviewerEmail, true);

  const kept = {
    team: team.slug,
    status: 'pending',
    goesTo: reviewerEmail,
    policy: KEPT_POLICY,
    reason: KEPT_REASON,
    entities: KEPT_KEYWORD,
    promptKept: true,
  };
  const pii = { team: team.slug, status: 'pending', goesTo: reviewerEmail };

  // The org admin (not a reviewer of this team): the metadata and the badge; no controls, no prompt.
  await ui.visit('/escalations');
  await expectNoReviewActions(await expectRow(page, keptId, kept));
  await expectNoReviewActions(await expectRow(page, piiId, pii));
  await expectNotInPage(page, secret, piiEmail);
  await ui.visit(`/escalations?status=pending&confirm=${keptId}&outcome=approved`);
  await expect(confirmDialog(page)).toHaveCount(0);
  await expectNotInPage(page, secret);

  // Another member of the team: the same, even with the confirmation address.
  const member = await signInElsewhere(browser, memberEmail, memberPassword, { allowed: [FAILED_LOAD] });
  try {
    await openEscalations(member.page, member.kt, member.ui);
    await expectNoReviewActions(await expectRow(member.page, keptId, kept));
    await expectNotInPage(member.page, secret, piiEmail);
    for (const outcome of ['approved', 'denied']) {
      await member.ui.visit(`/escalations?status=pending&confirm=${keptId}&outcome=${outcome}`);
      await expect(confirmDialog(member.page)).toHaveCount(0);
      await expectNotInPage(member.page, secret);
    }
    await claimAnyway(member.ui, keptId);
    await expect(member.ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
    await expect(member.ui.flash()).toHaveText(notReviewerMessage([reviewerEmail]));
    await expectNotInPage(member.page, secret);
    await member.ui.shot('member-no-prompt');
    member.expectNoErrors();
  } finally {
    await member.close();
  }

  // The reviewer: the controls; the prompt only in the confirmation of the policy that keeps it.
  const reviewer = await signInElsewhere(browser, reviewerEmail, reviewerPassword);
  const note = `read and cleared (${uniqueSuffix()})`;
  try {
    const rp = reviewer.page;
    await openEscalations(rp, reviewer.kt, reviewer.ui);
    const row = await expectRow(rp, keptId, kept);
    await expect(row.getByRole('button', { name: 'Claim' })).toBeVisible();
    await expect(row.getByRole('link', { name: 'Approve' })).toBeVisible();
    await expect(row.getByRole('link', { name: 'Deny' })).toBeVisible();
    await expect(escalationRow(rp, piiId).getByRole('button', { name: 'Claim' })).toBeVisible();
    await expectNotInPage(rp, secret, piiEmail);

    // `pii-review` keeps no prompt: its confirmation shows none.
    await escalationRow(rp, piiId).getByRole('link', { name: 'Deny' }).click();
    await expect(rp).toHaveURL(new RegExp(`confirm=${escapeRegExp(piiId)}&outcome=denied$`));
    await expect(confirmDialog(rp)).toContainText(`Deny the request held by ${POLICY} (${REASON}, ${MODEL}) for team ${team.slug}?`);
    await reviewer.kt.settle();
    await expectNotInPage(rp, piiEmail, secret);
    await confirmDialog(rp).getByRole('link', { name: 'Cancel' }).click();
    await expect(rp).toHaveURL(/\/escalations\?status=pending$/);
    await expect(confirmDialog(rp)).toHaveCount(0);

    // `deal-review` keeps it: the reviewer reads the request as sent before deciding.
    await escalationRow(rp, keptId).getByRole('link', { name: 'Approve' }).click();
    await expect(rp).toHaveURL(new RegExp(`/escalations\\?status=pending&confirm=${escapeRegExp(keptId)}&outcome=approved$`));
    const dialog = confirmDialog(rp);
    await expect(dialog).toContainText(
      `Approve the request held by ${KEPT_POLICY} (${KEPT_REASON}, ${MODEL}) for team ${team.slug}?`,
    );
    await expect(dialog.locator('figure.held-prompt')).toBeVisible();
    await expect(heldPrompt(rp)).toHaveText(`user: ${prompt}`);
    await reviewer.kt.settle();
    await reviewer.ui.shot('reviewer-held-prompt');
    await dialog.getByLabel('Note (optional)').fill(note);
    await reviewer.ui.submit(dialog.getByRole('button', { name: 'Approve' }));
    await expect(rp).toHaveURL(/\/escalations\?status=resolved$/);
    await reviewer.ui.expectFlashOk(`Approved: the caller may resend the same request once with X-Escalation-Id: ${keptId}.`);
    const done = { ...kept, status: 'approved', reviewer: actor(reviewerEmail), note, promptKept: false };
    await expectNoReviewActions(await expectRow(rp, keptId, done));
    await expectNotInPage(rp, secret);

    // Erased on resolution: not even the reviewer's confirmation address shows it any more.
    await reviewer.ui.visit(`/escalations?status=resolved&confirm=${keptId}&outcome=approved`);
    await expectNotInPage(rp, secret);
    await reviewer.ui.shot('reviewer-prompt-erased');
    reviewer.expectNoErrors();
  } finally {
    await reviewer.close();
  }

  // The approved request passes once; the admin sees it decided, without the badge.
  expectCompletion(await chat(request, team, prompt, keptId), 'the approved request resent with X-Escalation-Id', true);
  expectRefusedRetry(await chat(request, team, prompt, keptId), 'the approved request resent a second time');
  await ui.visit('/escalations?status=resolved');
  await expectRow(page, keptId, { ...kept, status: 'approved', reviewer: actor(reviewerEmail), note, promptKept: false });
  await expectNotInPage(page, secret);
  // The other escalation is still pending, for the reviewer.
  await ui.visit('/escalations');
  await expectRow(page, piiId, pii);
});

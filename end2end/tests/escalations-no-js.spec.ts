import type { Page } from '@playwright/test';
import { ADMIN_ACTOR, consoleTest as test, expect, signInElsewhere, uniqueEmail, uniqueSuffix } from './fixtures';
import {
  KEPT_KEYWORD,
  KEPT_POLICY,
  KEPT_REASON,
  MODEL,
  NO_REVIEWERS,
  POLICY,
  PROMPT_CONFIG,
  REASON,
  actor,
  adminToken,
  chat,
  escalationRow as row,
  expectNoReviewActions,
  expectNotInPage,
  expectRow,
  heldPrompt,
  hold,
  onboardEscalatingTeam,
  promptWithEmail,
  promptWithKeyword,
  reviewersSummary,
  setReviewer,
} from './escalation-config';

// Escalations and the audit log without JavaScript: claiming, the confirmation step and the
// decision are plain form posts (post → redirect → get), the audit filter is a plain GET form and
// its export a plain download; so is naming a team's reviewer in Settings › Teams.
//
// As in escalations.spec.ts, every test onboards its own team through the API (an org-wide access
// key made in Settings › Keys; template `std`), then makes a configuration that escalates prompts
// with an email address the current version of the team's managed gateway (the setup and the
// helpers are shared, in escalation-config.ts).

/** The columns of the Escalations table. */
async function expectColumns(page: Page): Promise<void> {
  await expect(page.locator('table#escalations thead th')).toHaveText([
    'Held (UTC)',
    'Team',
    'Policy',
    'Reason',
    'Entities',
    'Model',
    'Status',
    'Goes to',
    'Reviewer',
    'Note',
    'Actions',
  ]);
}

test('without JavaScript: claiming and approving an escalation are plain form posts, with a confirmation step', async ({
  page,
  kt,
  ui,
  request,
}) => {
  await kt.signIn();
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token);
  const { prompt, email } = promptWithEmail();
  const id = await hold(request, team, prompt);

  await ui.topNav().getByRole('link', { name: 'Escalations' }).click();
  await kt.expectPath('/escalations');
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await expect(ui.heading('Escalations')).toBeVisible();
  await expect(page.locator('nav.tabs a[data-tab="pending"]')).toHaveAttribute('aria-current', 'page');
  await expect(page.locator('nav.tabs a[data-tab="pending"]')).toHaveText(/^pending \(\d+\)$/);
  await expectColumns(page);
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
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token);
  const { prompt } = promptWithEmail();
  const id = await hold(request, team, prompt);

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

test('without JavaScript: an org admin names a reviewer in Settings › Teams; the reviewer reads the kept prompt, claims and approves with form posts', async ({
  page,
  kt,
  ui,
  request,
  browser,
}) => {
  await kt.signIn();
  const { token } = await adminToken(ui);
  const team = await onboardEscalatingTeam(request, token, PROMPT_CONFIG);
  // A prompt with an email address waits for the new version; then `deal-review` holds one with
  // its keyword and keeps it for the reviewers.
  await hold(request, team, promptWithEmail().prompt);
  const { prompt, secret } = promptWithKeyword();
  const id = await hold(request, team, prompt, KEPT_POLICY);
  const reviewerEmail = uniqueEmail('esc-reviewer');
  const password = await ui.inviteUser(reviewerEmail, 'member', team.slug);

  // Settings › Teams: "Make reviewer" is a plain form post.
  await ui.visit('/settings/teams');
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await expect(reviewersSummary(ui, team.slug)).toHaveText(NO_REVIEWERS);
  await setReviewer(ui, team.slug, reviewerEmail, true);
  await expect(reviewersSummary(ui, team.slug)).toHaveText(`Escalations go to: ${reviewerEmail}`);
  await ui.shot('nojs-teams-reviewer');

  // The org admin no longer decides on this team's escalations, and does not see the prompt.
  const kept = {
    team: team.slug,
    status: 'pending',
    goesTo: reviewerEmail,
    policy: KEPT_POLICY,
    reason: KEPT_REASON,
    entities: KEPT_KEYWORD,
    promptKept: true,
  };
  await ui.visit('/escalations');
  await expectColumns(page);
  await expectNoReviewActions(await expectRow(page, id, kept));
  await expectNotInPage(page, secret);
  await ui.visit(`/escalations?status=pending&confirm=${id}&outcome=approved`);
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
  await expectNotInPage(page, secret);

  // The reviewer, without JavaScript either.
  const reviewer = await signInElsewhere(browser, reviewerEmail, password, { js: false });
  const note = `cleared by legal (${uniqueSuffix()})`;
  try {
    const rp = reviewer.page;
    await reviewer.ui.visit('/escalations');
    await expect(rp.locator('main[data-hydrated="false"]')).toBeAttached();
    await expectNotInPage(rp, secret);
    await reviewer.ui.submit(row(rp, id).getByRole('button', { name: 'Claim' }));
    await expect(rp).toHaveURL(/\/escalations\?status=claimed$/);
    await reviewer.ui.expectFlashOk('Claimed: you review it.');
    await expectRow(rp, id, { ...kept, status: 'claimed', reviewer: actor(reviewerEmail) });

    await row(rp, id).getByRole('link', { name: 'Approve' }).click();
    await expect(rp).toHaveURL(new RegExp(`/escalations\\?status=claimed&confirm=${id}&outcome=approved$`));
    const dialog = rp.getByRole('alertdialog');
    await expect(dialog).toContainText(`Approve the request held by ${KEPT_POLICY} (${KEPT_REASON}, ${MODEL}) for team ${team.slug}?`);
    await expect(heldPrompt(rp)).toHaveText(`user: ${prompt}`);
    await reviewer.ui.shot('nojs-reviewer-held-prompt');
    await dialog.getByLabel('Note (optional)').fill(note);
    await reviewer.ui.submit(dialog.getByRole('button', { name: 'Approve' }));
    await expect(rp).toHaveURL(/\/escalations\?status=resolved$/);
    await reviewer.ui.expectFlashOk(`Approved: the caller may resend the same request once with X-Escalation-Id: ${id}.`);
    await expectNoReviewActions(
      await expectRow(rp, id, { ...kept, status: 'approved', reviewer: actor(reviewerEmail), note, promptKept: false }),
    );
    // Erased on resolution.
    await reviewer.ui.visit(`/escalations?status=resolved&confirm=${id}&outcome=approved`);
    await expectNotInPage(rp, secret);
    reviewer.expectNoErrors();
  } finally {
    await reviewer.close();
  }

  // The org admin sees it decided by the reviewer, without the badge.
  await ui.visit('/escalations?status=resolved');
  await expectRow(page, id, { ...kept, status: 'approved', reviewer: actor(reviewerEmail), note, promptKept: false });
  await expectNotInPage(page, secret);
});

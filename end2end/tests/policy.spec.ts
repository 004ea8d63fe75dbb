import { test, expect, KtConsole } from './fixtures';

// (d) A request the demo policy blocks is refused by the gateway and listed as "block".

const BLOCKED_MODEL = 'gpt-3.5-turbo'; // not in the demo allowlist (which allows demo-*)

test('a request blocked by policy is answered 409 and listed with verdict "block"', async ({ page, kt, gateway }) => {
  await kt.signIn();
  await kt.gotoDashboard();
  // The demo may come with seeded events: only rows that appear after our request count.
  const idsBefore = new Set(await kt.eventIds());
  const blockedBefore = await kt.statCount('blocked');

  const res = await gateway.chat(BLOCKED_MODEL);
  const body = await res.text();
  expect(res.status(), `gateway answer: ${body}`).toBe(409);
  expect(JSON.parse(body)?.error?.type, `error.type in ${body}`).toBe('policy_violation');

  await kt.waitForDashboard(
    (html) => KtConsole.eventRowsInHtml(html).some((r) => !idsBefore.has(r.id) && r.html.includes(BLOCKED_MODEL)),
    `a new ${BLOCKED_MODEL} event`,
  );
  await kt.gotoDashboard();

  const newIds = (await kt.eventIds()).filter((id) => !idsBefore.has(id));
  expect(newIds.length, 'a new row in table#recent-events').toBeGreaterThan(0);
  const newRows = kt.eventRows().and(page.locator(newIds.map((id) => `[data-event-id="${cssString(id)}"]`).join(', ')));
  const row = newRows.filter({ hasText: BLOCKED_MODEL });
  await expect(row).toHaveCount(1);
  await expect(kt.cellText(row, BLOCKED_MODEL)).toBeVisible();
  await expect(kt.cellText(row, 'block')).toBeVisible();
  await expect(kt.cellText(row, 'allow')).toHaveCount(0);

  const blockedAfter = await kt.statCount('blocked');
  expect(blockedAfter).toBeGreaterThanOrEqual(1);
  expect(blockedAfter, `stat-blocked was ${blockedBefore} before`).toBeGreaterThan(blockedBefore);
});

function cssString(s: string): string {
  return s.replace(/["\\]/g, '\\$&');
}

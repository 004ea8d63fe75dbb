import { consoleTest as test, expect, uniqueSlug, uniqueSuffix } from './fixtures';
import { STEPS, field, requestRow, sendRequest, watchRequestPage } from './onboarding-helpers';

// Onboarding and the fleet without JavaScript: the request form refuses bad fields field by field
// and sends a fixed one, the admin approves from the queue, and the request's page reaches
// "ready" through its meta refresh, all as plain form posts, links and page loads.
//
// Every test uses its own team slug and environment, as in onboarding.spec.ts.

/** The page refreshes itself each second while provisioning runs (a gateway process starts). */
const PROVISIONING_TIMEOUT = 15_000;

test('without JavaScript: bad fields are refused one by one, and a fixed request is sent', async ({ page, kt, ui }) => {
  const slug = uniqueSlug('e2e-nojs');
  await kt.signIn();
  await page.goto('/onboarding');
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await expect(ui.heading('Onboarding')).toBeVisible();
  await expect(field(page, 'lead_email')).toHaveValue(kt.creds.email);

  // Values the browser lets through (no JavaScript: its own checks still run, the slug's
  // pattern included) but the server refuses: a mail domain without a dot, an upper-case
  // environment.
  await field(page, 'team_name').fill(`Team ${slug}`);
  await field(page, 'team_slug').fill(slug);
  await field(page, 'lead_email').fill('lead@localhost');
  await field(page, 'template').selectOption('exp');
  await field(page, 'monthly_budget').fill('40');
  await field(page, 'models').fill('gpt-4o-mini');
  await field(page, 'environment').fill('Staging');
  await sendRequest(page, ui);
  await kt.expectPath('/onboarding');
  await ui.shot('nojs-refused');

  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText('Not sent: 2 field(s) need attention (marked below).');
  await expect(page.locator('div.field.invalid')).toHaveCount(2);
  for (const name of ['lead_email', 'environment']) {
    await expect(page.locator(`div.field[data-field="${name}"]`)).toHaveClass(/(^|\s)invalid(\s|$)/);
  }
  await expect(page.locator('#f-lead_email-error')).toContainText('"lead@localhost" is not an email address');
  await expect(page.locator('#f-environment-error')).toContainText('`environment` "Staging" is not valid');
  await expect(field(page, 'team_name')).toHaveValue(`Team ${slug}`);
  await expect(field(page, 'team_slug')).toHaveValue(slug);
  await expect(field(page, 'template')).toHaveValue('exp');
  await expect(field(page, 'monthly_budget')).toHaveValue('40');
  await expect(field(page, 'environment')).toHaveValue('Staging');

  await field(page, 'lead_email').fill('lead@example.com');
  await field(page, 'environment').fill('staging');
  await sendRequest(page, ui);
  await expect(page).toHaveURL(/\/onboarding\/[^/?#]+$/);
  await ui.expectFlashOk(`Requested team ${slug}: an org admin will review it.`);
  await expect(page.locator('#request-status')).toHaveText('pending');
  for (const s of STEPS) {
    await expect(page.locator(`ol#steps li[data-step="${s}"] .badge`), `step ${s}`).toHaveText('pending');
  }
  // A pending request's page does not refresh itself.
  await expect(page.locator('meta[http-equiv="refresh"]')).toHaveCount(0);
});

test('without JavaScript: the admin approves from the queue and the page refreshes itself until ready', async ({
  page,
  kt,
  ui,
}) => {
  const slug = uniqueSlug('e2e-nojs');
  const env = `nojs-${uniqueSuffix()}`;
  const gatewayName = `${slug}-${env}`;
  await kt.signIn();
  await page.goto('/onboarding');
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await field(page, 'team_name').fill(`Team ${slug}`);
  await field(page, 'team_slug').fill(slug);
  await field(page, 'monthly_budget').fill('30');
  await field(page, 'environment').fill(env);
  await sendRequest(page, ui);
  await expect(page).toHaveURL(/\/onboarding\/[^/?#]+$/);
  const id = new URL(page.url()).pathname.split('/').pop()!;
  await expect(page.locator('#request-status')).toHaveText('pending');

  await page.goto('/onboarding');
  const queued = requestRow(page, 'queue', slug);
  await expect(queued).toHaveAttribute('data-request', id);
  const loads = watchRequestPage(page, id);
  await ui.submit(queued.getByRole('button', { name: 'Approve' }));
  await kt.expectPath(`/onboarding/${id}`);
  await ui.expectFlashOk(`Approved ${slug}: provisioning runs now.`);

  // No script: only the page's meta refresh brings the new state.
  await expect(page.locator('#request-status')).toHaveText('ready', { timeout: PROVISIONING_TIMEOUT });
  await expect(page.locator('meta[http-equiv="refresh"]')).toHaveCount(0);
  await ui.shot('nojs-ready');
  for (const s of STEPS) {
    await expect(page.locator(`ol#steps li[data-step="${s}"] .badge`), `step ${s}`).toHaveText('done');
  }
  await expect(page.locator('ol#steps li[data-step="gateway"]')).toContainText(`${gatewayName} running at http://127.0.0.1:`);
  await expect(
    page.locator('#secret-once'),
    `the requester sees the gateway key once the request is ready (loads of the page: ${JSON.stringify(loads)})`,
  ).toHaveText(/^\s*kt_gk_\S+\s*$/);
  await expect(page.locator('#gateway-usage')).toContainText(/base_url="http:\/\/127\.0\.0\.1:\d+\/v1"/);

  // Shown once.
  await page.reload();
  await expect(page.locator('#request-status')).toHaveText('ready');
  await expect(page.locator('#secret-once')).toHaveCount(0);

  // The fleet lists the new gateway; the filter form is a plain GET.
  await page.goto('/gateways');
  const row = page.locator(`table#fleet tr[data-gateway="${gatewayName}"]`);
  await expect(row).toContainText('local (kt serve)');
  await expect(row.locator('.health')).toHaveText('healthy');
  const filters = page.locator('form#fleet-filters');
  await filters.locator('select[name="environment"]').selectOption(env);
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(new RegExp(`/gateways\\?.*environment=${env}`));
  await expect(page.locator('table#fleet tbody tr')).toHaveCount(1);
  await row.getByRole('link', { name: gatewayName }).click();
  await expect(ui.heading(`Gateway ${gatewayName}`)).toBeVisible();
  await ui.crumbs().getByRole('link', { name: 'Gateways' }).click();
  await kt.expectPath('/gateways');
});

import {
  consoleTest as test,
  expect,
  FORBIDDEN_TEXT,
  onboardThroughApi,
  templatePath,
  uniqueEmail,
  uniqueSlug,
  uniqueSuffix,
} from './fixtures';

// Settings › Onboarding templates, with JavaScript on: an org admin edits a template (live lint
// while typing, a refused save shown at its lines with nothing stored, a saved change with its
// audit entry), and a team onboarded afterwards starts from the saved template; a team lead can
// neither open the page nor change a template.
//
// The admin's test edits `exp` and puts it back as it was (also when it fails), so the specs that
// onboard with `exp` see the shipped template; the no-JS spec edits `reg` the same way.

// Onboarding a team starts its gateway process (`kt serve`); the whole flow takes a while on 2 cores.
test.describe.configure({ timeout: 90_000 });

/** A page answered 403 shows up in Chromium's console as a failed resource load. */
const FAILED_LOAD = /Failed to load resource: the server responded with a status of 40[34]/;

/** The shipped `exp` template's rate limit (line 25) and what the test changes it to. */
const RATE_LINE = 25;
const SHIPPED_RATE = '    max_requests_per_minute: 60';
const EDITED_RATE = '    max_requests_per_minute: 90';

test('an org admin edits a template: live lint, a refused save at its line, then a saved change new teams start from', async ({
  page,
  kt,
  ui,
  request,
}) => {
  await kt.signIn();
  await kt.settle();

  // From the Settings tabs.
  await ui.topNav().getByRole('link', { name: 'Settings' }).click();
  await kt.expectPath('/settings/keys');
  await kt.settle();
  await ui.settingsTabs().getByRole('link', { name: 'Onboarding templates' }).click();
  await kt.expectPath('/settings/templates');
  await expect(ui.heading('Onboarding templates')).toBeVisible();
  await expect(page).toHaveTitle('Onboarding templates · Settings · kt');
  await expect(ui.settingsTabs().locator('a[aria-current="page"]')).toHaveText('Onboarding templates');
  await expect(ui.crumbs().locator('li[aria-current="page"]')).toHaveText('Onboarding templates');
  await kt.settle();

  // The templates, each with its leading comment, its last change and an Edit link.
  await expect(page.locator('table#templates tbody tr')).toHaveCount(3);
  expect(
    await page.locator('table#templates tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-template'))),
  ).toEqual(['exp', 'reg', 'std']);
  for (const name of ['exp', 'reg', 'std']) {
    const row = ui.templateRow(name);
    await expect(row.locator('td').first()).toHaveText(name);
    await expect(row.locator('td').nth(1).locator('li').first()).toHaveText(new RegExp(`^Template \`${name}\`: `));
    await expect(row.locator('td').nth(2)).toHaveText(/^\s*\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\s*by \S/);
    await expect(row.getByRole('link', { name: 'Edit' })).toHaveAttribute('href', templatePath(name));
  }
  const summary = ui.templateRow('exp').locator('td').nth(1).locator('li');
  await expect(summary.first()).toHaveText('Template `exp`: experiments and prototypes.');
  await expect(summary).toContainText(['The requested models (onboarding sets `allowed_models`), 60 requests per minute.']);
  // Only the comment: no policy line, no empty comment line.
  await expect(ui.templateRow('exp').locator('td').nth(1)).not.toContainText('policies:');
  await expect(page.locator('form#template-editor')).toHaveCount(0);
  await ui.shot('templates');

  await ui.templateRow('exp').getByRole('link', { name: 'Edit' }).click();
  await kt.expectPath('/settings/templates');
  await expect(page).toHaveURL(/\?name=exp$/);
  await expect(page.locator('#editor-title')).toHaveText('Edit exp');
  await kt.settle();
  const textarea = ui.templateContent();
  const original = await textarea.inputValue();
  const lines = original.split('\n');
  expect(lines[RATE_LINE - 1], `line ${RATE_LINE} of the shipped exp template`).toBe(SHIPPED_RATE);
  const edited = original.replace(SHIPPED_RATE, EDITED_RATE);
  const zero = original.replace(SHIPPED_RATE, '    max_requests_per_minute: 0');
  const misspelt = original.replace(SHIPPED_RATE, '    max_request_per_minute: 90');

  let restored = false;
  try {
    // Live lint while typing.
    const live = page.locator('#live-lint');
    await expect(live).toHaveCount(0);
    await textarea.fill(misspelt);
    await expect(live).toContainText('Lint: 2 error(s); saving will be refused.');
    await expect(live.locator('li')).toHaveCount(2);
    await expect(live.locator('li', { hasText: 'line 23, column 5 (policies[3]): missing required field `max_requests_per_minute`' })).toHaveCount(1);
    await expect(
      live.locator('li', { hasText: `line ${RATE_LINE}, column 5 (policies[3].max_request_per_minute): unknown field \`max_request_per_minute\`` }),
    ).toContainText('did you mean `max_requests_per_minute`?');
    await textarea.fill(zero);
    await expect(live).toContainText('Lint: 1 error(s); saving will be refused.');
    await expect(live.locator('li')).toHaveText([
      `line ${RATE_LINE}, column 30 (policies[3].max_requests_per_minute): must be greater than 0, found 0`,
    ]);
    await ui.shot('template-live-lint');

    // Saving it is refused: the error at its line, the refused content in the editor.
    await ui.saveTemplate('exp', zero);
    await ui.expectTemplateRefused(zero, {
      [RATE_LINE]: {
        code: '    max_requests_per_minute: 0',
        error: `line ${RATE_LINE}, column 30 (policies[3].max_requests_per_minute): must be greater than 0, found 0`,
      },
    });
    await expect(page.locator(`#problems li[data-line="${RATE_LINE - 1}"]`)).not.toHaveClass(/error-line/);
    await ui.shot('template-refused');

    // Nothing was stored: a reload shows the template as it was, without the refused content.
    await page.reload();
    await kt.settle();
    await expect(ui.flash()).toHaveCount(0);
    await expect(page.locator('#problems')).toHaveCount(0);
    await expect(textarea).toHaveValue(original);

    // A valid change: live lint agrees, and it is saved.
    await textarea.fill(edited);
    await expect(live).toHaveText('Lint: no errors.');
    await expect(live).toHaveClass(/(^|\s)lint-ok(\s|$)/);
    await ui.submit(ui.templateEditor().getByRole('button', { name: 'Lint and save' }));
    await ui.expectTemplateSaved('exp', edited);
    await ui.shot('template-saved');
    await ui.expectTemplateAudited('exp', original, edited);

    // The Onboarding page still describes the templates, and links admins to their editor.
    await ui.topNav().getByRole('link', { name: 'Onboarding' }).click();
    await kt.expectPath('/onboarding');
    await kt.settle();
    const templates = page.locator('details.templates');
    await templates.locator('summary').click();
    for (const name of ['exp', 'reg', 'std']) {
      const t = templates.locator(`[data-template="${name}"]`);
      await expect(t.locator('h3')).toHaveText(name);
      await expect(t.locator('li').first()).toHaveText(new RegExp(`^Template \`${name}\`: `));
    }
    await templates.getByRole('link', { name: 'Edit the templates' }).click();
    await kt.expectPath('/settings/templates');
    await expect(ui.heading('Onboarding templates')).toBeVisible();
    await kt.settle();

    // A team onboarded now starts from the saved template (through the API, with an access key).
    const token = await ui.createKey(`e2e-tpl-${uniqueSuffix()}`, 'access', '');
    expect(token).toMatch(/^kt_ak_\S+$/);
    const auth = { Authorization: `Bearer ${token}` };
    const slug = uniqueSlug('e2e-tpl');
    const { approval, body } = await onboardThroughApi(request, auth, {
      team_name: `Team ${slug}`,
      team_slug: slug,
      lead_email: 'lead@example.com',
      template: 'exp',
      monthly_budget: 30,
      models: ['gpt-4o'],
    });
    expect(approval.environment).toBe('production');
    const config = approval.steps.find((s) => s.step === 'config');
    expect(config?.detail, body).toContain('version 1 of production from template exp (lint clean)');
    const teamId = approval.team_id;

    const readConfig = async (): Promise<string> => {
      const res = await request.get(`/v1/configurations?team_id=${encodeURIComponent(teamId)}&environment=production`, {
        headers: auth,
        failOnStatusCode: false,
      });
      const text = await res.text();
      expect(res.status(), `GET /v1/configurations: ${text}`).toBe(200);
      const versions = JSON.parse(text).data;
      expect(versions.length, text).toBe(1);
      return versions[0].content;
    };
    const content = await readConfig();
    expect(content).toContain(EDITED_RATE);
    expect(content).not.toContain(SHIPPED_RATE);
    // Onboarding filled in the request's budget and models.
    expect(content).toContain('    monthly_limit: 30\n');
    expect(content).toContain('    allowed_models: ["gpt-4o"]\n');

    // The Configurations page shows the same.
    await ui.visit(`/configs?team=${encodeURIComponent(slug)}&env=production`);
    await expect(page.locator('#versions-title')).toHaveText(`Versions of ${slug} · production`);
    await expect(page.locator('textarea#config-content')).toHaveValue(new RegExp(`^${EDITED_RATE}$`, 'm'));

    // Put the template back; the team keeps its configuration.
    await ui.openTemplate('exp');
    await kt.settle();
    await ui.saveTemplate('exp', original);
    await ui.expectTemplateSaved('exp', original);
    restored = true;
    await ui.expectTemplateAudited('exp', edited, original);
    expect(await readConfig()).toContain(EDITED_RATE);
  } finally {
    if (!restored) await ui.restoreTemplate('exp', original);
  }
});

test('a team lead has no Onboarding templates tab, gets the 403 page, and cannot change a template', async ({
  page,
  kt,
  ui,
  consoleGuard,
}) => {
  consoleGuard.allow(FAILED_LOAD);
  const slug = uniqueSlug('e2e-tpl-lead');
  const email = uniqueEmail('tpl-lead');
  const marker = `# forged by a team lead ${uniqueSuffix()}`;

  await kt.signIn();
  await ui.createTeam(slug);
  const password = await ui.inviteUser(email, 'team_lead', slug);
  const original = await ui.openTemplate('exp');
  await kt.signOut();
  await kt.expectSignedOut();

  await ui.signInAs(email, password, '/');
  await ui.visit('/settings/keys');
  expect(await ui.settingsTabLabels()).toEqual(['Keys', 'Teams and members']);

  for (const path of ['/settings/templates', templatePath('exp')]) {
    const res = await page.goto(path);
    expect(res?.status(), path).toBe(403);
    await expect(page.getByText(FORBIDDEN_TEXT)).toBeVisible();
    await expect(page.locator('table#templates, form#template-editor')).toHaveCount(0);
    expect(await page.content(), 'no template content on the 403 page').not.toContain('max_requests_per_minute');
    await kt.settle();
  }
  await ui.shot('lead-templates-forbidden');

  // The Onboarding page describes the templates but offers no link to edit them.
  await ui.visit('/onboarding');
  await page.locator('details.templates summary').click();
  await expect(page.locator('details.templates [data-template="exp"] h3')).toHaveText('exp');
  await expect(page.getByRole('link', { name: 'Edit the templates' })).toHaveCount(0);

  // A save posted anyway is refused by the server: the template is unchanged.
  await page.request.post('/api/save_template', { form: { name: 'exp', content: `${marker}\n${original}` } });
  await ui.visit('/onboarding');
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText('only org admins edit onboarding templates');
  await kt.signOut();
  await kt.expectSignedOut();
  await kt.signIn();
  expect(await ui.openTemplate('exp')).toBe(original);
  await expect(ui.templateRow('exp')).not.toContainText(email);
});

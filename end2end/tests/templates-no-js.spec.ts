import { consoleTest as test, expect, templatePath } from './fixtures';

// Settings › Onboarding templates without JavaScript: the list, the Edit link, a refused save
// (shown again with its errors at their lines, nothing stored) and a saved change are plain links
// and form posts (post → redirect → get).
//
// This spec edits `reg` (templates.spec.ts edits `exp`) and puts it back as it was, also when it
// fails.

test.describe.configure({ timeout: 60_000 });

/** The shipped `reg` template's rate-limit policy (line 35) and its limit (line 37). */
const POLICY_LINE = 35;
const RATE_LINE = 37;
const SHIPPED_RATE = '    max_requests_per_minute: 30';
const EDITED_RATE = '    max_requests_per_minute: 45';
const MISSPELT_RATE = '    max_request_per_minute: 45';

test('without JavaScript: a template save is refused at its lines, then a valid change is saved', async ({
  page,
  kt,
  ui,
}) => {
  await kt.signIn();
  await page.goto('/settings/keys');
  await ui.settingsTabs().getByRole('link', { name: 'Onboarding templates' }).click();
  await kt.expectPath('/settings/templates');
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await expect(ui.heading('Onboarding templates')).toBeVisible();
  await expect(page.locator('table#templates tbody tr')).toHaveCount(3);
  await expect(ui.templateRow('reg').locator('td').nth(1).locator('li').first()).toHaveText(
    'Template `reg`: regulated workloads (health, finance, HR data).',
  );
  await ui.templateRow('reg').getByRole('link', { name: 'Edit' }).click();
  await expect(page).toHaveURL((url) => url.pathname + url.search === templatePath('reg'));
  await expect(page.locator('#editor-title')).toHaveText('Edit reg');
  const original = await ui.templateContent().inputValue();
  expect(original.split('\n')[RATE_LINE - 1], `line ${RATE_LINE} of the shipped reg template`).toBe(SHIPPED_RATE);
  const misspelt = original.replace(SHIPPED_RATE, MISSPELT_RATE);
  const edited = original.replace(SHIPPED_RATE, EDITED_RATE);

  let restored = false;
  try {
    // Refused: two errors at their lines, nothing stored, the refused content in the editor.
    await ui.saveTemplate('reg', misspelt);
    await ui.expectTemplateRefused(misspelt, {
      [POLICY_LINE]: {
        code: '  - name: rate-limit',
        error: `line ${POLICY_LINE}, column 5 (policies[4]): missing required field \`max_requests_per_minute\``,
      },
      [RATE_LINE]: {
        code: MISSPELT_RATE,
        error: `line ${RATE_LINE}, column 5 (policies[4].max_request_per_minute): unknown field \`max_request_per_minute\``,
      },
    });
    await expect(page.locator(`#problems li[data-line="${RATE_LINE}"] .lint-error`)).toContainText(
      'did you mean `max_requests_per_minute`?',
    );
    // No live lint without JavaScript.
    await expect(page.locator('#live-lint')).toHaveCount(0);
    await ui.shot('nojs-template-refused');

    // Shown once; the stored template is unchanged.
    await page.reload();
    await expect(ui.flash()).toHaveCount(0);
    await expect(page.locator('#problems')).toHaveCount(0);
    await expect(ui.templateContent()).toHaveValue(original);

    // Saved.
    await ui.saveTemplate('reg', edited);
    await ui.expectTemplateSaved('reg', edited);
    await ui.shot('nojs-template-saved');
    await ui.expectTemplateAudited('reg', original, edited);

    // The Onboarding page links the admin to the editor.
    await page.goto('/onboarding');
    await page.locator('details.templates summary').click();
    await page.locator('details.templates').getByRole('link', { name: 'Edit the templates' }).click();
    await kt.expectPath('/settings/templates');

    // "Close" leaves the editor.
    await page.goto(templatePath('reg'));
    await expect(ui.templateContent()).toHaveValue(edited);
    await ui.templateEditor().getByRole('link', { name: 'Close' }).click();
    await expect(page).toHaveURL((url) => url.pathname + url.search === '/settings/templates');
    await expect(ui.templateEditor()).toHaveCount(0);

    // Put back.
    await ui.openTemplate('reg');
    await ui.saveTemplate('reg', original);
    await ui.expectTemplateSaved('reg', original);
    restored = true;
  } finally {
    if (!restored) await ui.restoreTemplate('reg', original);
  }
});

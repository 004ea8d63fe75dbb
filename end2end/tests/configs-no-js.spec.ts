import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { consoleTest as test, expect, uniqueSuffix, type ConsoleUi } from './fixtures';

// Configurations and Git repositories without JavaScript: the editor's save (refused content
// with its errors at their lines, then a saved version), the compare form, rollback after a
// confirmation, and linking a repository and "Sync now" all work as plain form posts and links.
//
// Every test uses its own environment name (and Git repository), as in configs.spec.ts.

/** A configuration that passes lint; `limit` makes versions differ (line 5). */
function validConfig(limit: number): string {
  return `# kt e2e configuration
policies:
  - name: cost-cap
    type: cost_limit
    monthly_limit: ${limit}
    action: block
    enabled: true
  - name: model-allowlist
    type: model_filter
    allowed_models: ["demo-*"]
    enabled: true
providers:
  targets:
    - id: demo
      provider: {kind: demo}
`;
}

/** Two lint errors: the policy at line 8 lacks `allowed_models`, line 10 has `allowed_modles`. */
function invalidConfig(limit: number): string {
  return validConfig(limit).replace('allowed_models:', 'allowed_modles:');
}

function uniqueEnv(prefix = 'e2e-nojs'): string {
  return `${prefix}-${uniqueSuffix()}`;
}

function configsPath(team: string, env: string): string {
  return `/configs?team=${encodeURIComponent(team)}&env=${encodeURIComponent(env)}`;
}

function versionRow(page: Page, version: number): Locator {
  return page.locator(`table#versions tr[data-version="${version}"]`);
}

function currentBadge(row: Locator): Locator {
  return row.locator('.badge', { hasText: /^\s*current\s*$/ });
}

async function saveInEditor(page: Page, ui: ConsoleUi, content: string, message: string): Promise<void> {
  const editor = page.locator('form#editor');
  await editor.locator('textarea#config-content').fill(content);
  await editor.locator('input[name="message"]').fill(message);
  await ui.submit(editor.getByRole('button', { name: 'Lint and save' }));
}

async function saveVersion(page: Page, ui: ConsoleUi, env: string, version: number, limit: number): Promise<void> {
  await saveInEditor(page, ui, validConfig(limit), `limit ${limit}`);
  await ui.expectFlashOk(`Saved version ${version} of ${env};`);
  await expect(currentBadge(versionRow(page, version))).toBeVisible();
}

test('without JavaScript: the editor refuses invalid content at its lines and saves valid content', async ({
  page,
  kt,
  ui,
}) => {
  const env = uniqueEnv();
  await kt.signIn();
  await page.goto(configsPath('demo', env));
  await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
  await expect(page.getByText('No version yet for this environment.')).toBeVisible();

  // Refused: an error flash, the content numbered with the errors under their lines.
  await saveInEditor(page, ui, invalidConfig(40), 'misspelt key');
  await kt.expectPath('/configs');
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText(
    'Not saved: 2 lint errors (shown at their lines below). The current version keeps running.',
  );
  const problems = page.locator('#problems');
  await expect(problems.locator('h2')).toHaveText('Refused: 2 lint error(s)');
  await expect(problems.locator('ol.numbered > li')).toHaveCount(15);
  await expect(problems.locator('li.error-line')).toHaveCount(2);
  await expect(problems.locator('li[data-line="8"]')).toHaveClass(/(^|\s)error-line(\s|$)/);
  await expect(problems.locator('li[data-line="8"] .lint-error')).toContainText(
    'line 8, column 5 (policies[1]): missing required field `allowed_models`',
  );
  await expect(problems.locator('li[data-line="10"]')).toHaveClass(/(^|\s)error-line(\s|$)/);
  await expect(problems.locator('li[data-line="10"] code')).toHaveText('    allowed_modles: ["demo-*"]');
  await expect(problems.locator('li[data-line="10"] .lint-error')).toContainText(
    'line 10, column 5 (policies[1].allowed_modles): unknown field `allowed_modles`',
  );
  await expect(problems.locator('li[data-line="5"]')).not.toHaveClass(/error-line/);
  await expect(page.locator('textarea#config-content')).toHaveValue(invalidConfig(40));
  await expect(page.locator('form#editor input[name="message"]')).toHaveValue('misspelt key');
  await expect(page.locator('table#versions')).toHaveCount(0);
  // No live lint without JavaScript.
  await expect(page.locator('#live-lint')).toHaveCount(0);
  await ui.shot('editor-refused');

  // Valid content becomes version 1.
  await saveInEditor(page, ui, validConfig(40), 'first version');
  await ui.expectFlashOk(`Saved version 1 of ${env}; managed gateways of ${env} switch to it within seconds.`);
  await expect(page.locator('#problems')).toHaveCount(0);
  const row = versionRow(page, 1);
  await expect(currentBadge(row)).toBeVisible();
  await expect(row.locator('td').nth(1)).toHaveText('console');
  await expect(row.locator('td').nth(2)).toHaveText('first version');
  await expect(page.locator('textarea#config-content')).toHaveValue(validConfig(40));
  await ui.shot('editor-saved');
});

test('without JavaScript: versions are compared, and a rollback is confirmed and becomes current', async ({
  page,
  kt,
  ui,
}) => {
  const env = uniqueEnv();
  await kt.signIn();
  await page.goto(configsPath('demo', env));
  await saveVersion(page, ui, env, 1, 40);
  await saveVersion(page, ui, env, 2, 75);

  // The compare form is a plain GET.
  await expect(page.locator('#diff-summary')).toHaveText('Version 1 → 2: 1 line(s) added, 1 removed.');
  const compare = page.locator('form#compare');
  await compare.locator('select[name="from"]').selectOption('2');
  await compare.locator('select[name="to"]').selectOption('1');
  await compare.getByRole('button', { name: 'Compare' }).click();
  await expect(page).toHaveURL(/[?&]from=2&to=1$/);
  await expect(page.locator('#diff-summary')).toHaveText('Version 2 → 1: 1 line(s) added, 1 removed.');
  await expect(page.locator('table#diff tr.diff-del td').nth(2)).toHaveText('-     monthly_limit: 75');
  await expect(page.locator('table#diff tr.diff-add td').nth(2)).toHaveText('+     monthly_limit: 40');
  await ui.shot('configs-diff');

  // Rollback: the link asks, the form post rolls back.
  await versionRow(page, 1).getByRole('link', { name: 'Roll back to this' }).click();
  await expect(page).toHaveURL(/[?&]confirm=1$/);
  const dialog = page.getByRole('alertdialog');
  await expect(dialog).toContainText(`Roll demo ${env} back to version 1?`);
  await ui.submit(dialog.getByRole('button', { name: 'Roll back' }));
  await kt.expectPath('/configs');
  await ui.expectFlashOk('Rolled back: version 3 has the content of version 1 and is current.');
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
  await expect(page.locator('table#versions tbody tr')).toHaveCount(3);
  await expect(currentBadge(versionRow(page, 3))).toBeVisible();
  await expect(versionRow(page, 3).locator('td').nth(2)).toHaveText('rollback to version 1');
  await expect(page.locator('textarea#config-content')).toHaveValue(validConfig(40));
  await ui.shot('rollback-done');
});

test('without JavaScript: linking a Git repository and "Sync now" are plain form posts', async ({ page, kt, ui }) => {
  const env = uniqueEnv('gitenv-nojs');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kt-e2e-git-'));
  const origin = path.join(dir, 'origin.git');
  const work = path.join(dir, 'work');
  const url = `file://${origin}`;
  const git = (cwd: string, ...args: string[]): string =>
    execFileSync('git', ['-c', 'commit.gpgsign=false', ...args], {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'E2E Author',
        GIT_AUTHOR_EMAIL: 'author@example.com',
        GIT_COMMITTER_NAME: 'E2E Committer',
        GIT_COMMITTER_EMAIL: 'committer@example.com',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_TERMINAL_PROMPT: '0',
      },
    }).trim();
  const commit = (message: string, content: string): string => {
    mkdirSync(path.join(work, 'teams'), { recursive: true });
    writeFileSync(path.join(work, 'teams', 'demo.yaml'), content);
    git(work, 'add', '--all');
    git(work, 'commit', '--quiet', '-m', message);
    git(work, 'push', '--quiet', 'origin', 'main');
    return git(work, 'rev-parse', 'HEAD');
  };

  try {
    git(dir, 'init', '--quiet', '--bare', '--initial-branch=main', origin);
    git(dir, 'init', '--quiet', '--initial-branch=main', work);
    git(work, 'remote', 'add', 'origin', origin);
    const first = commit('Cost cap 60', validConfig(60));

    await kt.signIn();
    await page.goto('/git');
    await expect(page.locator('main[data-hydrated="false"]')).toBeAttached();
    const form = page.locator('form#link-repo');
    await form.locator('input[name="repo_url"]').fill(url);
    await form.locator('input[name="path"]').fill('teams');
    await form.locator('input[name="branches"]').fill(`main = ${env}`);
    await form.locator('input[name="poll_interval_seconds"]').fill('3600');
    await ui.submit(form.getByRole('button', { name: 'Link and sync' }));
    await kt.expectPath('/git');
    await ui.expectFlashOk(`Linked ${url}. First sync: main → ${env}: 1 file(s): 1 deployed, 0 unchanged, 0 refused.`);
    await ui.takeSecret();
    const section = page.locator(`section.repo[aria-label="Repository ${url}"]`);
    const sync = section.locator('div.sync[data-branch="main"]');
    await expect(sync.locator('h3 .badge')).toHaveText('ok');
    await expect(sync.locator('p code').first()).toHaveText(first.slice(0, 12));
    await expect(sync.locator('tr[data-file="teams/demo.yaml"] .badge')).toHaveText('deployed');
    await ui.shot('git-linked');

    // A new commit, synced with the button.
    const second = commit('Cost cap 70', validConfig(70));
    await page.reload();
    await expect(ui.secret()).toHaveCount(0);
    await ui.submit(section.getByRole('button', { name: 'Sync now' }));
    await kt.expectPath('/git');
    await ui.expectFlashOk(`Synced ${url}: main → ${env}: 1 file(s): 1 deployed, 0 unchanged, 0 refused`);
    await expect(sync.locator('h3 .badge')).toHaveText('ok');
    await expect(sync.locator('p code').first()).toHaveText(second.slice(0, 12));
    const row = sync.locator('tr[data-file="teams/demo.yaml"]');
    await expect(row.locator('.badge')).toHaveText('deployed');
    await expect(row.locator('td.num')).toHaveText('2');

    // A commit that fails lint is refused at its line.
    commit('Misspell allowed_models', invalidConfig(80));
    await ui.submit(section.getByRole('button', { name: 'Sync now' }));
    await ui.expectFlashOk(`Synced ${url}: main → ${env}: 1 file(s): 0 deployed, 0 unchanged, 1 refused`);
    await expect(sync.locator('h3 .badge')).toHaveText('partial');
    await expect(row.locator('.badge')).toHaveText('invalid');
    await expect(row.locator('ul.lint-errors li', { hasText: 'line 10, column 5: unknown field `allowed_modles`' })).toHaveCount(1);
    await ui.shot('git-invalid');

    // The team's configurations: version 2 from the second commit is still current.
    await row.getByRole('link', { name: 'demo' }).click();
    await kt.expectPath('/configs');
    await expect(page.locator('table#versions tbody tr')).toHaveCount(2);
    await expect(currentBadge(versionRow(page, 2))).toBeVisible();
    await expect(versionRow(page, 2).locator('td').nth(1)).toHaveText(`git ${second.slice(0, 12)} · E2E Author`);
    await expect(versionRow(page, 1).locator('td').nth(1)).toHaveText(`git ${first.slice(0, 12)} · E2E Author`);

    // Unlink, confirmed.
    await page.goto('/git');
    await section.getByRole('link', { name: 'Unlink' }).click();
    await ui.submit(page.getByRole('alertdialog').getByRole('button', { name: 'Unlink' }));
    await ui.expectFlashOk('Unlinked the repository');
    await expect(section).toHaveCount(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

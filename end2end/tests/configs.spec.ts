import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Locator, Page } from '@playwright/test';
import {
  consoleTest as test,
  expect,
  ADMIN_EMAIL,
  FORBIDDEN_TEXT,
  uniqueEmail,
  uniqueSlug,
  uniqueSuffix,
  type ConsoleUi,
} from './fixtures';

// Configurations and Git repositories, with JavaScript on: the editor (live lint, refused content
// shown at its lines, saved versions), the diff between versions, rollback after a confirmation,
// and Git repositories (link, deploy, refuse a commit that fails lint, unknown teams, files
// removed from Git, unlink), and what a team member may do there.
//
// Every test uses its own environment name (and its own Git repository), so tests do not depend
// on each other's versions, and the demo team's `production` configuration is never touched.

/** A page answered 403 shows up in Chromium's console as a failed resource load. */
const FAILED_LOAD = /Failed to load resource: the server responded with a status of 40[34]/;

// ---------------------------------------------------------------------------------------------
// Configurations used by the tests (line numbers matter: the lint errors are asserted at them).

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

/**
 * The same with `allowed_modles` (line 10): two lint errors, the policy (line 8) lacks
 * `allowed_models` and the misspelt key is unknown.
 */
function invalidConfig(limit: number): string {
  return validConfig(limit).replace('allowed_models:', 'allowed_modles:');
}

const MISSING_FIELD = 'line 8, column 5 (policies[1]): missing required field `allowed_models`';
const UNKNOWN_FIELD = 'line 10, column 5 (policies[1].allowed_modles): unknown field `allowed_modles`';

/** An environment name no other test uses. */
function uniqueEnv(prefix = 'e2e'): string {
  return `${prefix}-${uniqueSuffix()}`;
}

// ---------------------------------------------------------------------------------------------
// Configurations page helpers

function configsPath(team: string, env: string): string {
  return `/configs?team=${encodeURIComponent(team)}&env=${encodeURIComponent(env)}`;
}

function versionRow(page: Page, version: number): Locator {
  return page.locator(`table#versions tr[data-version="${version}"]`);
}

/** The "current" badge of a version row. */
function currentBadge(row: Locator): Locator {
  return row.locator('.badge', { hasText: /^\s*current\s*$/ });
}

/** Fills the editor and clicks "Lint and save" (a form post, then the page again). */
async function saveInEditor(page: Page, ui: ConsoleUi, content: string, message: string): Promise<void> {
  const editor = page.locator('form#editor');
  await editor.locator('textarea#config-content').fill(content);
  await editor.locator('input[name="message"]').fill(message);
  await ui.submit(editor.getByRole('button', { name: 'Lint and save' }));
}

/** Saves valid content and checks the new version is listed as current. */
async function saveVersion(page: Page, ui: ConsoleUi, env: string, version: number, limit: number): Promise<void> {
  await saveInEditor(page, ui, validConfig(limit), `limit ${limit}`);
  await ui.expectFlashOk(`Saved version ${version} of ${env};`);
  await expect(currentBadge(versionRow(page, version))).toBeVisible();
}

// ---------------------------------------------------------------------------------------------
// Git repositories made with the git CLI: a bare "origin.git" and a work tree that pushes to it.

const GIT_AUTHOR = 'E2E Author';

class GitRepo {
  readonly dir: string;
  readonly origin: string;
  readonly work: string;

  constructor() {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'kt-e2e-git-'));
    this.origin = path.join(this.dir, 'origin.git');
    this.work = path.join(this.dir, 'work');
    this.git(this.dir, 'init', '--quiet', '--bare', '--initial-branch=main', this.origin);
    this.git(this.dir, 'init', '--quiet', '--initial-branch=main', this.work);
    this.git(this.work, 'remote', 'add', 'origin', this.origin);
  }

  /** What the console is given to link. */
  get url(): string {
    return `file://${this.origin}`;
  }

  private git(cwd: string, ...args: string[]): string {
    return execFileSync('git', ['-c', 'commit.gpgsign=false', ...args], {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: GIT_AUTHOR,
        GIT_AUTHOR_EMAIL: 'author@example.com',
        GIT_COMMITTER_NAME: 'E2E Committer',
        GIT_COMMITTER_EMAIL: 'committer@example.com',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_TERMINAL_PROMPT: '0',
      },
    }).trim();
  }

  /**
   * Writes (content) or deletes (null) files of the work tree, commits them and pushes to main.
   * Returns the commit's full hash.
   */
  commit(message: string, files: Record<string, string | null>): string {
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(this.work, name);
      if (content === null) {
        unlinkSync(file);
      } else {
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, content);
      }
    }
    this.git(this.work, 'add', '--all');
    this.git(this.work, 'commit', '--quiet', '-m', message);
    this.git(this.work, 'push', '--quiet', 'origin', 'main');
    return this.git(this.work, 'rev-parse', 'HEAD');
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const repos: GitRepo[] = [];

function newRepo(): GitRepo {
  const repo = new GitRepo();
  repos.push(repo);
  return repo;
}

test.afterAll(() => {
  for (const repo of repos.splice(0)) repo.remove();
});

function repoSection(page: Page, repo: GitRepo): Locator {
  return page.locator(`section.repo[aria-label="Repository ${repo.url}"]`);
}

function fileRow(section: Locator, file: string): Locator {
  return section.locator(`div.sync[data-branch="main"] tr[data-file="${file}"]`);
}

/**
 * Links `repo` on /git (folder `teams`, main → `env`, polled hourly so that only "Sync now"
 * syncs during the test); checks the one-time webhook secret; returns the repository's panel.
 */
async function linkRepo(page: Page, ui: ConsoleUi, repo: GitRepo, env: string, firstSync: string): Promise<Locator> {
  await ui.visit('/git');
  const form = page.locator('form#link-repo');
  await form.locator('input[name="repo_url"]').fill(repo.url);
  await form.locator('input[name="path"]').fill('teams');
  await form.locator('input[name="branches"]').fill(`main = ${env}`);
  await form.locator('input[name="poll_interval_seconds"]').fill('3600');
  await ui.submit(form.getByRole('button', { name: 'Link and sync' }));
  await ui.kt.expectPath('/git');
  await ui.expectFlashOk(`Linked ${repo.url}. First sync: main → ${env}: ${firstSync}.`);
  await expect(ui.flash()).toContainText('this secret (shown once)');
  const secret = await ui.takeSecret();
  await expect(page.locator('button[data-copy="#secret-once"]')).toHaveText('Copy');

  const section = repoSection(page, repo);
  await expect(section).toHaveCount(1);
  const id = await section.getAttribute('data-repo');
  expect(id, 'data-repo on the repository panel').toBeTruthy();
  await expect(ui.flash()).toContainText(`/v1/git-repos/${id}/webhook`);
  const facts = section.locator('dl.facts');
  await expect(facts).toContainText('Folder');
  await expect(facts.locator('code', { hasText: /^teams$/ })).toBeVisible();
  await expect(facts).toContainText(`main → ${env}`);
  await expect(facts).toContainText('every 3600 s');
  await expect(facts.locator('code', { hasText: `/v1/git-repos/${id}/webhook` })).toBeVisible();
  // The panel never shows the secret.
  expect(await section.innerHTML()).not.toContain(secret);
  return section;
}

/** Clicks "Sync now" on a repository's panel; expects the flash to report `summary`. */
async function syncNow(page: Page, ui: ConsoleUi, repo: GitRepo, env: string, summary: string): Promise<Locator> {
  if (new URL(page.url()).pathname !== '/git' || new URL(page.url()).search !== '') await ui.visit('/git');
  await ui.submit(repoSection(page, repo).getByRole('button', { name: 'Sync now' }));
  await ui.kt.expectPath('/git');
  await ui.expectFlashOk(`Synced ${repo.url}: main → ${env}: ${summary}`);
  return repoSection(page, repo);
}

/** The status badge of main's last sync, its commit and its summary line. */
async function expectSync(section: Locator, env: string, status: string, commit: string, summary: string): Promise<void> {
  const sync = section.locator('div.sync[data-branch="main"]');
  await expect(sync.locator('h3')).toContainText(`main → ${env}`);
  await expect(sync.locator('h3 .badge')).toHaveText(status);
  await expect(sync.locator('p code').first()).toHaveText(commit.slice(0, 12));
  await expect(sync.locator('p.sync-message')).toHaveText(summary);
}

async function expectFile(section: Locator, file: string, status: string, version?: number): Promise<Locator> {
  const row = fileRow(section, file);
  await expect(row).toHaveCount(1);
  await expect(row.locator('.badge')).toHaveText(status);
  if (version !== undefined) await expect(row.locator('td.num')).toHaveText(String(version));
  return row;
}

// ---------------------------------------------------------------------------------------------
// The editor

test('the editor lints while typing, refuses invalid content at its lines, and saves valid content', async ({
  page,
  kt,
  ui,
}) => {
  const env = uniqueEnv();
  await kt.signIn();
  await kt.settle();
  expect(await ui.topNavLabels()).toEqual(['Dashboard', 'Cost Center', 'Gateways', 'Configurations', 'Git repositories', 'Onboarding', 'Escalations', 'Audit log', 'Settings', 'API']);
  await ui.topNav().getByRole('link', { name: 'Configurations' }).click();
  await kt.expectPath('/configs');
  await expect(ui.heading('Configurations')).toBeVisible();
  await expect(page).toHaveTitle(/Configurations/);

  await ui.visit(configsPath('demo', env));
  await expect(page.locator('#versions-title')).toHaveText(`Versions of demo · ${env}`);
  await expect(page.getByText('No version yet for this environment.')).toBeVisible();
  await expect(page.locator('table#versions')).toHaveCount(0);
  await expect(page.locator('form#pick select[name="team"] option:checked')).toHaveText('demo');
  await expect(page.locator('form#pick input[name="env"]')).toHaveValue(env);

  // Live lint while typing.
  const textarea = page.locator('form#editor textarea#config-content');
  await expect(textarea).toHaveValue('');
  await textarea.fill(invalidConfig(40));
  const live = page.locator('#live-lint');
  await expect(live).toContainText('Lint: 2 error(s); saving will be refused.');
  await expect(live.locator('li')).toHaveCount(2);
  await expect(live.locator('li', { hasText: MISSING_FIELD })).toHaveCount(1);
  await expect(live.locator('li', { hasText: UNKNOWN_FIELD })).toContainText('did you mean `allowed_models`?');
  await ui.shot('editor-live-lint-errors');
  await textarea.fill(validConfig(40));
  await expect(live).toHaveText('Lint: no errors.');
  await expect(live).toHaveClass(/(^|\s)lint-ok(\s|$)/);

  // Saving invalid content is refused: nothing is stored, the errors are shown at their lines,
  // and the content stays in the editor.
  await saveInEditor(page, ui, invalidConfig(40), 'misspelt key');
  await kt.expectPath('/configs');
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText('Not saved: 2 lint errors (shown at their lines below).');
  const problems = page.locator('#problems');
  await expect(problems.locator('h2')).toHaveText('Refused: 2 lint error(s)');
  const lines = problems.locator('ol.numbered > li');
  await expect(lines).toHaveCount(invalidConfig(40).trimEnd().split('\n').length);
  await expect(problems.locator('li.error-line')).toHaveCount(2);
  const line8 = problems.locator('li[data-line="8"]');
  await expect(line8).toHaveClass(/(^|\s)error-line(\s|$)/);
  await expect(line8.locator('code')).toHaveText('  - name: model-allowlist');
  await expect(line8.locator('.lint-error')).toContainText(MISSING_FIELD);
  const line10 = problems.locator('li[data-line="10"]');
  await expect(line10).toHaveClass(/(^|\s)error-line(\s|$)/);
  await expect(line10.locator('code')).toHaveText('    allowed_modles: ["demo-*"]');
  await expect(line10.locator('.lint-error')).toContainText(UNKNOWN_FIELD);
  await expect(problems.locator('li[data-line="9"]')).not.toHaveClass(/error-line/);
  await expect(problems.locator('li[data-line="9"] .lint-error')).toHaveCount(0);
  await expect(textarea).toHaveValue(invalidConfig(40));
  await expect(page.locator('form#editor input[name="message"]')).toHaveValue('misspelt key');
  await expect(page.getByText('No version yet for this environment.')).toBeVisible();
  await ui.shot('editor-refused');

  // Fixing it in the editor: live lint agrees, and saving creates version 1.
  await textarea.fill(validConfig(40));
  await expect(live).toHaveText('Lint: no errors.');
  await page.locator('form#editor input[name="message"]').fill('first version');
  await ui.submit(page.locator('form#editor').getByRole('button', { name: 'Lint and save' }));
  await ui.expectFlashOk(`Saved version 1 of ${env}; managed gateways of ${env} switch to it within seconds.`);
  await expect(page.locator('#problems')).toHaveCount(0);
  const row = versionRow(page, 1);
  await expect(row).toHaveCount(1);
  await expect(currentBadge(row)).toBeVisible();
  const cells = row.locator('td');
  await expect(cells.nth(1)).toHaveText('console');
  await expect(cells.nth(2)).toHaveText('first version');
  await expect(cells.nth(3)).toHaveText(`${ADMIN_EMAIL} (console)`);
  await expect(cells.nth(5)).toHaveText(/^[0-9a-f]{12}$/);
  // The only version has no actions, and there is nothing to compare yet.
  await expect(row.getByRole('link')).toHaveCount(0);
  await expect(page.locator('form#compare')).toHaveCount(0);
  // The editor starts from the current version.
  await expect(textarea).toHaveValue(validConfig(40));
  await ui.shot('editor-saved');

  // The refused draft was shown once: a reload shows the current version, without problems.
  await page.reload();
  await kt.settle();
  await expect(page.locator('#problems')).toHaveCount(0);
  await expect(ui.flash()).toHaveCount(0);
  await expect(page.locator('table#versions tbody tr')).toHaveCount(1);
});

// ---------------------------------------------------------------------------------------------
// Diff and rollback

test('two versions are compared line by line', async ({ page, kt, ui }) => {
  const env = uniqueEnv();
  await kt.signIn();
  await ui.visit(configsPath('demo', env));
  await saveVersion(page, ui, env, 1, 40);
  await saveVersion(page, ui, env, 2, 75);

  // By default the diff shows what the current version changed.
  await expect(page.locator('table#versions tbody tr')).toHaveCount(2);
  await expect(currentBadge(versionRow(page, 1))).toHaveCount(0);
  await expect(page.locator('#diff-summary')).toHaveText('Version 1 → 2: 1 line(s) added, 1 removed.');
  const diff = page.locator('table#diff');
  await expect(diff.locator('thead th').nth(0)).toHaveText('v1');
  await expect(diff.locator('thead th').nth(1)).toHaveText('v2');
  await expect(diff.locator('tr.diff-del')).toHaveCount(1);
  await expect(diff.locator('tr.diff-add')).toHaveCount(1);
  await expect(diff.locator('tr.diff-del td').nth(2)).toHaveText('-     monthly_limit: 40');
  await expect(diff.locator('tr.diff-add td').nth(2)).toHaveText('+     monthly_limit: 75');
  // Old and new line numbers of the changed line.
  await expect(diff.locator('tr.diff-del td').nth(0)).toHaveText('5');
  await expect(diff.locator('tr.diff-del td').nth(1)).toHaveText('');
  await expect(diff.locator('tr.diff-add td').nth(0)).toHaveText('');
  await expect(diff.locator('tr.diff-add td').nth(1)).toHaveText('5');
  // Context around it; the rest of the file is left out.
  await expect(diff.locator('tr.diff-same').first()).toBeVisible();
  expect(await diff.locator('tr.diff-same').count()).toBeLessThanOrEqual(6);
  await ui.shot('configs-diff');

  // "Diff with current" on the older version.
  await versionRow(page, 1).getByRole('link', { name: 'Diff with current' }).click();
  await expect(page).toHaveURL(/[?&]from=1&to=2$/);
  await expect(page.locator('#diff-summary')).toHaveText('Version 1 → 2: 1 line(s) added, 1 removed.');
  await kt.settle();

  // The compare form, the other way round.
  const compare = page.locator('form#compare');
  await compare.locator('select[name="from"]').selectOption('2');
  await compare.locator('select[name="to"]').selectOption('1');
  await compare.getByRole('button', { name: 'Compare' }).click();
  await expect(page).toHaveURL(/[?&]from=2&to=1$/);
  await expect(page.locator('#diff-summary')).toHaveText('Version 2 → 1: 1 line(s) added, 1 removed.');
  await expect(page.locator('table#diff tr.diff-del td').nth(2)).toHaveText('-     monthly_limit: 75');
  await expect(page.locator('table#diff tr.diff-add td').nth(2)).toHaveText('+     monthly_limit: 40');
  await expect(compare.locator('select[name="from"]')).toHaveValue('2');
  await expect(compare.locator('select[name="to"]')).toHaveValue('1');
  await kt.settle();

  // The same version on both sides.
  await compare.locator('select[name="from"]').selectOption('1');
  await compare.locator('select[name="to"]').selectOption('1');
  await compare.getByRole('button', { name: 'Compare' }).click();
  await expect(page).toHaveURL(/[?&]from=1&to=1$/);
  await expect(page.getByText('Choose two different versions to compare.')).toBeVisible();
  await expect(page.locator('table#diff')).toHaveCount(0);
});

test('rolling back asks for confirmation and makes the old content a new current version', async ({ page, kt, ui }) => {
  const env = uniqueEnv();
  await kt.signIn();
  await ui.visit(configsPath('demo', env));
  await saveVersion(page, ui, env, 1, 40);
  await saveVersion(page, ui, env, 2, 75);
  await expect(versionRow(page, 2).getByRole('link', { name: 'Roll back to this' })).toHaveCount(0);

  // The link only asks; Cancel changes nothing.
  await versionRow(page, 1).getByRole('link', { name: 'Roll back to this' }).click();
  await expect(page).toHaveURL(/[?&]confirm=1$/);
  const dialog = page.getByRole('alertdialog');
  await expect(dialog).toContainText(`Roll demo ${env} back to version 1?`);
  await kt.settle();
  await ui.shot('rollback-confirm');
  await dialog.getByRole('link', { name: 'Cancel' }).click();
  await expect(page).not.toHaveURL(/confirm=/);
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
  await expect(page.locator('table#versions tbody tr')).toHaveCount(2);
  await kt.settle();

  // Confirmed: version 3 has version 1's content and is current.
  await versionRow(page, 1).getByRole('link', { name: 'Roll back to this' }).click();
  await expect(page.getByRole('alertdialog')).toBeVisible();
  await kt.settle();
  await ui.submit(page.getByRole('alertdialog').getByRole('button', { name: 'Roll back' }));
  await kt.expectPath('/configs');
  await ui.expectFlashOk('Rolled back: version 3 has the content of version 1 and is current.');
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
  await expect(page.locator('table#versions tbody tr')).toHaveCount(3);
  const row = versionRow(page, 3);
  await expect(currentBadge(row)).toBeVisible();
  await expect(currentBadge(versionRow(page, 2))).toHaveCount(0);
  await expect(row.locator('td').nth(1)).toHaveText('console');
  await expect(row.locator('td').nth(2)).toHaveText('rollback to version 1');
  // Same content, same hash.
  await expect(row.locator('td').nth(5)).toHaveText((await versionRow(page, 1).locator('td').nth(5).textContent()) ?? '');
  // The default diff shows what the rollback changed, and the editor holds the old content.
  await expect(page.locator('#diff-summary')).toHaveText('Version 2 → 3: 1 line(s) added, 1 removed.');
  await expect(page.locator('table#diff tr.diff-add td').nth(2)).toHaveText('+     monthly_limit: 40');
  await expect(page.locator('textarea#config-content')).toHaveValue(validConfig(40));
  await ui.shot('rollback-done');
});

// ---------------------------------------------------------------------------------------------
// Git repositories

test('a linked Git repository deploys a valid file, and a commit that fails lint is refused at its line', async ({
  page,
  kt,
  ui,
}) => {
  const env = uniqueEnv('gitenv');
  const repo = newRepo();
  const first = repo.commit('Raise the cost cap to 60', { 'teams/demo.yaml': validConfig(60) });

  await kt.signIn();
  await kt.settle();
  await ui.topNav().getByRole('link', { name: 'Git repositories' }).click();
  await kt.expectPath('/git');
  await expect(ui.heading('Git repositories')).toBeVisible();
  await kt.settle();

  const section = await linkRepo(page, ui, repo, env, '1 file(s): 1 deployed, 0 unchanged, 0 refused');
  await expectSync(section, env, 'ok', first, '1 file(s): 1 deployed, 0 unchanged, 0 refused');
  const demo = await expectFile(section, 'teams/demo.yaml', 'deployed', 1);
  await ui.shot('git-linked');

  // The secret was shown once.
  await page.reload();
  await kt.settle();
  await expect(ui.secret()).toHaveCount(0);
  await expect(ui.flash()).toHaveCount(0);

  // The file's team links to its configurations in the branch's environment.
  await demo.getByRole('link', { name: 'demo' }).click();
  await kt.expectPath('/configs');
  await expect(page).toHaveURL(new RegExp(`[?&]env=${env}$`));
  await expect(page.locator('#versions-title')).toHaveText(`Versions of demo · ${env}`);
  const v1 = versionRow(page, 1);
  await expect(currentBadge(v1)).toBeVisible();
  await expect(v1.locator('td').nth(1)).toHaveText(`git ${first.slice(0, 12)} · ${GIT_AUTHOR}`);
  await expect(v1.locator('td').nth(2)).toHaveText('Raise the cost cap to 60');
  await expect(page.locator('textarea#config-content')).toHaveValue(validConfig(60));
  await kt.settle();
  await ui.shot('git-deployed-version');

  // A commit that fails lint is refused: the file is "invalid" with the error at its line.
  const bad = repo.commit('Misspell allowed_models', { 'teams/demo.yaml': invalidConfig(80) });
  const after = await syncNow(page, ui, repo, env, '1 file(s): 0 deployed, 0 unchanged, 1 refused');
  await expectSync(after, env, 'partial', bad, '1 file(s): 0 deployed, 0 unchanged, 1 refused');
  const refused = await expectFile(after, 'teams/demo.yaml', 'invalid');
  await expect(refused.locator('td.num')).toHaveText('');
  const errors = refused.locator('ul.lint-errors li');
  await expect(errors).toHaveCount(2);
  await expect(errors.filter({ hasText: 'line 10, column 5: unknown field `allowed_modles`' })).toHaveCount(1);
  await expect(errors.filter({ hasText: 'line 8, column 5: missing required field `allowed_models`' })).toHaveCount(1);
  await ui.shot('git-invalid');

  // The team keeps the previous version.
  await ui.visit(configsPath('demo', env));
  await expect(page.locator('table#versions tbody tr')).toHaveCount(1);
  await expect(currentBadge(versionRow(page, 1))).toBeVisible();
  await expect(versionRow(page, 1).locator('td').nth(1)).toHaveText(`git ${first.slice(0, 12)} · ${GIT_AUTHOR}`);

  // Fixing it in Git deploys version 2; the diff shows the change.
  const fixed = repo.commit('Fix the allowlist key', { 'teams/demo.yaml': validConfig(80) });
  const synced = await syncNow(page, ui, repo, env, '1 file(s): 1 deployed, 0 unchanged, 0 refused');
  await expectSync(synced, env, 'ok', fixed, '1 file(s): 1 deployed, 0 unchanged, 0 refused');
  await expectFile(synced, 'teams/demo.yaml', 'deployed', 2);
  await ui.visit(configsPath('demo', env));
  await expect(currentBadge(versionRow(page, 2))).toBeVisible();
  await expect(versionRow(page, 2).locator('td').nth(1)).toHaveText(`git ${fixed.slice(0, 12)} · ${GIT_AUTHOR}`);
  await expect(page.locator('#diff-summary')).toHaveText('Version 1 → 2: 1 line(s) added, 1 removed.');
  await expect(page.locator('table#diff tr.diff-add td').nth(2)).toHaveText('+     monthly_limit: 80');
});

test('a Git version edited in the console: the diff shows only the edited line', async ({ page, kt, ui }) => {
  const env = uniqueEnv('gitenv');
  const repo = newRepo();
  repo.commit('Initial', { 'teams/demo.yaml': validConfig(60) });
  await kt.signIn();
  await linkRepo(page, ui, repo, env, '1 file(s): 1 deployed, 0 unchanged, 0 refused');

  await ui.visit(configsPath('demo', env));
  await expect(page.locator('textarea#config-content')).toHaveValue(validConfig(60));
  await saveInEditor(page, ui, validConfig(90), 'hotfix in the console');
  await ui.expectFlashOk(`Saved version 2 of ${env};`);
  await expect(versionRow(page, 2).locator('td').nth(1)).toHaveText('console');
  await expect(page.locator('#diff-summary')).toHaveText('Version 1 → 2: 1 line(s) added, 1 removed.');
  await expect(page.locator('table#diff tr.diff-del td').nth(2)).toHaveText('-     monthly_limit: 60');
  await expect(page.locator('table#diff tr.diff-add td').nth(2)).toHaveText('+     monthly_limit: 90');
});

test('Git sync reports files of unknown teams, and files removed from Git keep their team on its version', async ({
  page,
  kt,
  ui,
}) => {
  const env = uniqueEnv('gitenv');
  const slug = uniqueSlug('e2e-git');
  const repo = newRepo();
  const first = repo.commit('Two teams', {
    'teams/demo.yaml': validConfig(60),
    [`teams/${slug}.yaml`]: validConfig(20),
    'teams/README.md': 'Not a configuration.\n',
  });

  await kt.signIn();
  // No team has that slug yet.
  const section = await linkRepo(page, ui, repo, env, '2 file(s): 1 deployed, 0 unchanged, 1 refused');
  await expectSync(section, env, 'partial', first, '2 file(s): 1 deployed, 0 unchanged, 1 refused');
  await expectFile(section, 'teams/demo.yaml', 'deployed', 1);
  const unknown = await expectFile(section, `teams/${slug}.yaml`, 'unknown team');
  await expect(unknown).toContainText(`no team with slug "${slug}": create the team, or rename the file to <slug>.yaml`);
  await expect(unknown.getByRole('link')).toHaveCount(0);
  // Only YAML files are read.
  await expect(section.locator('tr[data-file="teams/README.md"]')).toHaveCount(0);
  await ui.shot('git-unknown-team');

  // Once the team exists, the same commit deploys it.
  await ui.createTeam(slug);
  const synced = await syncNow(page, ui, repo, env, '2 file(s): 1 deployed, 1 unchanged, 0 refused');
  await expectSync(synced, env, 'ok', first, '2 file(s): 1 deployed, 1 unchanged, 0 refused');
  await expectFile(synced, 'teams/demo.yaml', 'unchanged', 1);
  await expectFile(synced, `teams/${slug}.yaml`, 'deployed', 1);

  // Deleting the file from Git: reported as removed, the team keeps its version.
  const removal = repo.commit('Drop a team file', { [`teams/${slug}.yaml`]: null });
  const after = await syncNow(
    page,
    ui,
    repo,
    env,
    '1 file(s): 0 deployed, 1 unchanged, 0 refused; 1 removed from Git (their teams keep their versions)',
  );
  await expectSync(
    after,
    env,
    'ok',
    removal,
    '1 file(s): 0 deployed, 1 unchanged, 0 refused; 1 removed from Git (their teams keep their versions)',
  );
  await expectFile(after, 'teams/demo.yaml', 'unchanged', 1);
  const removed = await expectFile(after, `teams/${slug}.yaml`, 'removed', 1);
  await expect(removed).toContainText(`deleted from Git at ${removal.slice(0, 12)}; ${slug} keeps version 1`);
  await ui.shot('git-removed');

  await ui.visit(configsPath(slug, env));
  await expect(page.locator('table#versions tbody tr')).toHaveCount(1);
  await expect(currentBadge(versionRow(page, 1))).toBeVisible();
  await expect(versionRow(page, 1).locator('td').nth(1)).toHaveText(`git ${first.slice(0, 12)} · ${GIT_AUTHOR}`);

  // The next sync no longer lists it.
  const again = await syncNow(page, ui, repo, env, '1 file(s): 0 deployed, 1 unchanged, 0 refused');
  await expect(fileRow(again, `teams/${slug}.yaml`)).toHaveCount(0);
});

test('unlinking a Git repository asks for confirmation and keeps the deployed versions', async ({ page, kt, ui }) => {
  const env = uniqueEnv('gitenv');
  const repo = newRepo();
  const first = repo.commit('Initial', { 'teams/demo.yaml': validConfig(60) });

  await kt.signIn();
  const section = await linkRepo(page, ui, repo, env, '1 file(s): 1 deployed, 0 unchanged, 0 refused');
  const id = await section.getAttribute('data-repo');

  // Cancel first.
  await section.getByRole('link', { name: 'Unlink' }).click();
  await expect(page).toHaveURL(new RegExp(`/git\\?confirm=${id}$`));
  const dialog = page.getByRole('alertdialog');
  await expect(dialog).toContainText(`Unlink ${repo.url}? Its branches stop syncing; the versions it deployed stay current.`);
  await kt.settle();
  await ui.shot('git-confirm-unlink');
  await dialog.getByRole('link', { name: 'Cancel' }).click();
  await kt.expectPath('/git');
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
  await expect(repoSection(page, repo)).toHaveCount(1);
  await kt.settle();

  // Confirmed.
  await repoSection(page, repo).getByRole('link', { name: 'Unlink' }).click();
  await expect(page.getByRole('alertdialog')).toBeVisible();
  await kt.settle();
  await ui.submit(page.getByRole('alertdialog').getByRole('button', { name: 'Unlink' }));
  await kt.expectPath('/git');
  await ui.expectFlashOk('Unlinked the repository; the versions it deployed stay.');
  await expect(repoSection(page, repo)).toHaveCount(0);
  await expect(page.locator(`section.repo[data-repo="${id}"]`)).toHaveCount(0);
  await ui.shot('git-unlinked');

  // The deployed version stays current.
  await ui.visit(configsPath('demo', env));
  await expect(currentBadge(versionRow(page, 1))).toBeVisible();
  await expect(versionRow(page, 1).locator('td').nth(1)).toHaveText(`git ${first.slice(0, 12)} · ${GIT_AUTHOR}`);
});

// ---------------------------------------------------------------------------------------------
// Roles

test('a team member reads configurations but cannot edit or roll back, and cannot open Git repositories', async ({
  page,
  kt,
  ui,
  consoleGuard,
}) => {
  consoleGuard.allow(FAILED_LOAD);
  const slug = uniqueSlug('e2e-cfg');
  const env = uniqueEnv();
  const email = uniqueEmail('cfg-member');

  // As the admin: a team with two versions, and a member of it.
  await kt.signIn();
  await ui.createTeam(slug);
  await ui.visit(configsPath(slug, env));
  await saveVersion(page, ui, env, 1, 40);
  await saveVersion(page, ui, env, 2, 75);
  const password = await ui.inviteUser(email, 'member', slug);
  await kt.signOut();
  await kt.expectSignedOut();

  await ui.signInAs(email, password, '/');
  expect(await ui.topNavLabels()).toEqual(['Dashboard', 'Cost Center', 'Gateways', 'Configurations', 'Onboarding', 'Escalations', 'Settings', 'API']);
  await ui.visit(configsPath(slug, env), 'member-configs');
  await expect(page.locator('form#pick select[name="team"] option')).toHaveText([slug]);
  await expect(page.locator('table#versions tbody tr')).toHaveCount(2);
  await expect(currentBadge(versionRow(page, 2))).toBeVisible();
  await expect(versionRow(page, 1).getByRole('link', { name: 'Diff with current' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Roll back to this' })).toHaveCount(0);
  await expect(page.locator('form#editor, textarea#config-content')).toHaveCount(0);
  await expect(page.locator('#diff-summary')).toHaveText('Version 1 → 2: 1 line(s) added, 1 removed.');

  const teamId = await page.locator('form#pick select[name="team"] option').getAttribute('value');

  // Git repositories are for org admins.
  const res = await page.goto('/git');
  expect(res?.status()).toBe(403);
  await expect(page.getByText(FORBIDDEN_TEXT)).toBeVisible();
  await expect(page.locator('form#link-repo, section.repo')).toHaveCount(0);
  await kt.settle();
  await ui.shot('member-git-forbidden');

  // A rollback posted anyway is refused by the server, and no version is added.
  await page.request.post('/api/rollback_config', { form: { team_id: teamId!, environment: env, version: '1' } });
  await ui.visit(configsPath(slug, env));
  await expect(ui.flash()).toHaveClass(/(^|\s)error(\s|$)/);
  await expect(ui.flash()).toContainText('your role cannot change configurations');
  await expect(page.locator('table#versions tbody tr')).toHaveCount(2);
  await expect(currentBadge(versionRow(page, 2))).toBeVisible();

  // A hand-made confirmation address must not offer a rollback to a read-only role either.
  await ui.visit(`${configsPath(slug, env)}&confirm=1`, 'member-confirm');
  await expect(page.locator('table#versions tbody tr')).toHaveCount(2);
  await expect(page.getByRole('alertdialog'), 'no rollback confirmation for a read-only role').toHaveCount(0);
});

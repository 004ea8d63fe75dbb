// Shared fixtures and helpers for the kt console browser tests.
//
// - Every test fails on an uncaught page error (`pageerror`) or a console message of type
//   "error": that is how hydration panics (console_error_panic_hook + `unreachable`) show up.
// - The demo credentials are read from the data directory that `kt demo` writes
//   (`.kt-e2e/demo-admin-password`, `.kt-e2e/demo-gateway-key`).
// - `gateway.chat()` sends an OpenAI-style chat request through the gateway port.
// - `kt` is a small page object for the console (sign-in, dashboard, events table, stats).

import {
  test as base,
  expect,
  type APIRequestContext,
  type APIResponse,
  type Browser,
  type Locator,
  type Page,
} from '@playwright/test';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';

export { expect };

/** Data directory of the console under test (the webServer command uses `.kt-e2e` next to the config). */
export const DATA_DIR = process.env.KT_E2E_DATA_DIR
  ? path.resolve(process.env.KT_E2E_DATA_DIR)
  : path.resolve(__dirname, '..', '.kt-e2e');

/** Gateway (proxy) base URL; `kt demo --gateway-port 3101`. */
export const GATEWAY_URL = (process.env.KT_E2E_GATEWAY_URL ?? 'http://127.0.0.1:3101').replace(/\/+$/, '');

export const ADMIN_EMAIL = 'admin@kt.local';

/** How the console records the demo admin's changes (audit log, "by …"). */
export const ADMIN_ACTOR = `${ADMIN_EMAIL} (console)`;

/** Hydrating a debug wasm bundle can take a few seconds on 2 cores. */
export const HYDRATION_TIMEOUT = 20_000;

/** Events are written by the gateway, possibly asynchronously: how long to wait for one to be listed. */
export const EVENT_LISTED_TIMEOUT = 15_000;

export interface Credentials {
  email: string;
  password: string;
}

/** A model name the demo allowlist accepts (`demo-*`) and that no other test uses. */
export function uniqueModel(prefix = 'demo-e2e'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Reads a file `kt demo` writes into the data directory; waits briefly in case it is written late. */
async function readDemoFile(name: string): Promise<string> {
  const file = path.join(DATA_DIR, name);
  const deadline = Date.now() + 10_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = (await readFile(file, 'utf8')).trim();
      if (value.length > 0) return value;
      lastError = new Error('file is empty');
    } catch (err) {
      lastError = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    `Could not read ${file} (${String(lastError)}). ` +
      'It is written by `kt demo` into KT_DATA_DIR; is the webServer from playwright.config.ts running?',
  );
}

// ---------------------------------------------------------------------------------------------
// Gateway client

export interface ChatOptions {
  stream?: boolean;
  content?: string;
}

export class Gateway {
  constructor(
    private readonly request: APIRequestContext,
    private readonly key: string,
  ) {}

  /** `POST /v1/chat/completions` through the gateway with the demo key. */
  chat(model: string, opts: ChatOptions = {}): Promise<APIResponse> {
    const data: Record<string, unknown> = {
      model,
      messages: [{ role: 'user', content: opts.content ?? 'hello' }],
    };
    if (opts.stream) data.stream = true;
    return this.request.post(`${GATEWAY_URL}/v1/chat/completions`, {
      headers: { Authorization: `Bearer ${this.key}` },
      data,
      timeout: 15_000,
      failOnStatusCode: false,
    });
  }

  /** Sends a non-streamed request and checks it is an OpenAI-style completion. */
  async expectCompletion(model: string): Promise<void> {
    const res = await this.chat(model);
    const body = await res.text();
    expect(res.status(), `gateway answer for ${model}: ${body}`).toBe(200);
    const json = JSON.parse(body);
    expect(Array.isArray(json.choices) && json.choices.length > 0, `choices in ${body}`).toBe(true);
  }

  /** Sends a streamed request; the body must be SSE chunks ending with `data: [DONE]`. */
  async expectStreamedCompletion(model: string): Promise<void> {
    const res = await this.chat(model, { stream: true });
    const body = await res.text();
    expect(res.status(), `gateway answer for ${model}: ${body}`).toBe(200);
    expect(res.headers()['content-type'] ?? '').toContain('text/event-stream');
    expect(body.trimEnd().endsWith('data: [DONE]'), `SSE body must end with "data: [DONE]":\n${body}`).toBe(true);
    const chunks = body
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice('data:'.length).trim())
      .filter((payload) => payload !== '[DONE]')
      .map((payload) => JSON.parse(payload));
    expect(chunks.length, `SSE chunks before [DONE]:\n${body}`).toBeGreaterThan(0);
    expect(
      chunks.some((c) => Array.isArray(c.choices) && c.choices.length > 0),
      `at least one chunk with choices:\n${body}`,
    ).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------
// Console page object

export class KtConsole {
  constructor(
    readonly page: Page,
    readonly js: boolean,
    readonly creds: Credentials,
    private readonly guard?: ConsoleGuard,
  ) {}

  // --- generic ---

  hydrated(): Locator {
    return this.page.locator('main[data-hydrated="true"]');
  }

  /**
   * Waits until the wasm has hydrated the page (JS project only). Gives up at once when the page
   * has thrown (a hydration panic never sets the marker), instead of waiting for the timeout.
   */
  async waitForHydration(): Promise<void> {
    const deadline = Date.now() + HYDRATION_TIMEOUT;
    while (Date.now() < deadline) {
      const thrown = this.guard?.pageErrors() ?? [];
      if (thrown.length > 0) {
        throw new Error(`The page threw before hydrating (main[data-hydrated="true"]):\n${thrown.join('\n')}`);
      }
      if ((await this.hydrated().count()) > 0) return;
      await this.page.waitForTimeout(100);
    }
    await expect(this.hydrated(), 'the page should hydrate (main[data-hydrated="true"])').toBeAttached({
      timeout: 1_000,
    });
  }

  /**
   * With JavaScript on, waits for hydration when the page carries the marker, so that a test
   * neither races the hydration (inputs, buttons) nor ends before a hydration panic is reported.
   */
  async settle(): Promise<void> {
    if (!this.js) return;
    if ((await this.page.locator('main[data-hydrated]').count()) > 0) await this.waitForHydration();
  }

  async expectPath(pathname: string): Promise<void> {
    await expect(this.page).toHaveURL((url) => url.pathname === pathname);
  }

  // --- sign-in / sign-out ---

  loginForm(): Locator {
    return this.page.locator('form', { has: this.page.locator('input[name="password"]') });
  }

  async openLogin(): Promise<void> {
    await this.page.goto('/login');
    await expect(this.loginForm().locator('button[type="submit"]', { hasText: 'Sign in' })).toBeVisible();
    await this.settle();
  }

  async submitLogin(email: string, password: string): Promise<void> {
    const form = this.loginForm();
    await form.locator('input[name="email"]').fill(email);
    await form.locator('input[name="password"]').fill(password);
    await form.locator('button[type="submit"]', { hasText: 'Sign in' }).click();
  }

  /** Signs in as the demo admin and ends on the Dashboard. */
  async signIn(): Promise<void> {
    await this.openLogin();
    await this.submitLogin(this.creds.email, this.creds.password);
    await this.expectPath('/');
    await expect(this.dashboardHeading()).toBeVisible();
  }

  signOutButton(): Locator {
    return this.page.locator('form').getByRole('button', { name: 'Sign out' });
  }

  /** Clicks "Sign out" and waits for the POST it sends (a form post or a server-function fetch). */
  async signOut(): Promise<void> {
    await expect(this.signOutButton()).toBeVisible();
    await Promise.all([
      this.page.waitForResponse((res) => res.request().method() === 'POST'),
      this.signOutButton().click(),
    ]);
  }

  /** Visiting `/` must end on the login page (retries briefly while a sign-out completes). */
  async expectSignedOut(): Promise<void> {
    await expect(async () => {
      await this.page.goto('/');
      expect(new URL(this.page.url()).pathname).toBe('/login');
    }).toPass({ timeout: 10_000 });
    await expect(this.loginForm().locator('button[type="submit"]', { hasText: 'Sign in' })).toBeVisible();
  }

  // --- dashboard ---

  dashboardHeading(): Locator {
    return this.page.locator('h1', { hasText: /^\s*Dashboard\s*$/ });
  }

  async gotoDashboard(): Promise<void> {
    await this.page.goto('/');
    await this.expectPath('/');
    await expect(this.dashboardHeading()).toBeVisible();
    await this.settle();
  }

  /** Fetches the server-rendered Dashboard HTML with the page's session cookie. */
  async dashboardHtml(): Promise<string> {
    const res = await this.page.request.get(new URL('/', this.page.url()).href);
    return res.text();
  }

  /**
   * Waits until the server-rendered Dashboard satisfies `ready` (events may be stored
   * asynchronously after the gateway answered). This is only a wait; assertions are made on the
   * page afterwards.
   */
  async waitForDashboard(ready: (html: string) => boolean, what: string): Promise<void> {
    await expect
      .poll(async () => ready(await this.dashboardHtml()), {
        message: `waiting for the Dashboard to list ${what}`,
        timeout: EVENT_LISTED_TIMEOUT,
      })
      .toBe(true);
  }

  /** Waits until every model is mentioned on the Dashboard, then (re)loads it. */
  async gotoDashboardListing(...models: string[]): Promise<void> {
    await this.waitForDashboard((html) => models.every((m) => html.includes(m)), models.join(', '));
    await this.gotoDashboard();
  }

  /** The event rows of server-rendered Dashboard HTML, as (data-event-id, row HTML) pairs. */
  static eventRowsInHtml(html: string): { id: string; html: string }[] {
    const rows: { id: string; html: string }[] = [];
    for (const m of html.matchAll(/<tr\b[^>]*\bdata-event-id="([^"]*)"[^>]*>([\s\S]*?)<\/tr>/g)) {
      rows.push({ id: m[1], html: m[2] });
    }
    return rows;
  }

  eventsTable(): Locator {
    return this.page.locator('table#recent-events');
  }

  eventRows(): Locator {
    return this.eventsTable().locator('tbody tr');
  }

  /** Rows of the events table that mention `text` (e.g. a unique model name). */
  eventRowsWith(text: string): Locator {
    return this.eventRows().filter({ hasText: text });
  }

  async eventIds(): Promise<string[]> {
    return this.eventRows().evaluateAll((rows) =>
      rows.map((row) => row.getAttribute('data-event-id') ?? '').filter((id) => id !== ''),
    );
  }

  /** An element of `row` whose whole text is `text` (a cell or a badge). */
  cellText(row: Locator, text: string): Locator {
    return row.getByText(new RegExp(`^\\s*${escapeRegExp(text)}\\s*$`, 'i')).first();
  }

  /**
   * Sum of the token numbers of a row: every column whose header mentions "token" (e.g. "Tokens",
   * or "Prompt tokens" + "Completion tokens"); a cell like "12 / 30" counts as 42.
   */
  async rowTokens(row: Locator): Promise<number> {
    const headers = await this.eventsTable().locator('thead th').allTextContents();
    const columns = headers.flatMap((h, i) => (/token/i.test(h) ? [i] : []));
    expect(columns.length, `a "Tokens" column in table#recent-events (headers: ${JSON.stringify(headers)})`).toBeGreaterThan(0);
    const cells = await row.locator(':scope > td, :scope > th').allTextContents();
    return columns.reduce((sum, i) => sum + integersIn(cells[i] ?? '').reduce((a, b) => a + b, 0), 0);
  }

  stat(name: 'requests' | 'blocked' | 'spend'): Locator {
    return this.page.getByTestId(`stat-${name}`);
  }

  /**
   * The count shown by a stat card: its `data-value` (or a descendant's) when present, otherwise
   * the last stand-alone integer in its visible text (cards read "label, value").
   */
  async statCount(name: 'requests' | 'blocked'): Promise<number> {
    const card = this.stat(name);
    await expect(card).toContainText(/\d/);
    const dataValue =
      (await card.getAttribute('data-value')) ??
      ((await card.locator('[data-value]').count()) > 0
        ? await card.locator('[data-value]').first().getAttribute('data-value')
        : null);
    if (dataValue !== null && /^\s*\d+\s*$/.test(dataValue)) return Number(dataValue);
    const text = await card.innerText();
    const numbers = integersIn(text);
    expect(numbers.length, `a number in [data-testid=stat-${name}]: "${text}"`).toBeGreaterThan(0);
    return numbers[numbers.length - 1];
  }

  /** The amount shown by the spend card, formatted like "$0.0012". */
  async statSpend(): Promise<number> {
    const card = this.stat('spend');
    await expect(card).toContainText(/\$\d[\d,]*\.\d{4}\b/);
    const text = await card.innerText();
    const m = /\$(\d[\d,]*\.\d{4})\b/.exec(text);
    return Number(m![1].replace(/,/g, ''));
  }

  // --- chart ---

  requestsChart(): Locator {
    return this.page.locator('div.kt-chart[data-chart="requests"]');
  }

  /** The data table next to the chart (a sibling, or inside a sibling wrapper). */
  requestsChartTable(): Locator {
    return this.requestsChart().locator(
      'xpath=..//table[contains(concat(" ", normalize-space(@class), " "), " kt-chart-data ")]',
    );
  }

  async requestsChartOption(): Promise<any> {
    const raw = await this.requestsChart().getAttribute('data-option');
    expect(raw, 'data-option on div.kt-chart[data-chart="requests"]').toBeTruthy();
    try {
      return JSON.parse(raw!);
    } catch (err) {
      throw new Error(`data-option is not JSON (${String(err)}): ${raw}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Small utilities

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Stand-alone integers in a text: "Requests12" and "1,234" count; "$0.0012", "0.5" and units
 * such as "24h" or "7d" do not.
 */
export function integersIn(text: string): number[] {
  const matches = text.match(/(?<![\d.,$])(?:\d{1,3}(?:,\d{3})+|\d+)(?![\d.,]|[a-z])/g) ?? [];
  return matches.map((m) => Number(m.replace(/,/g, '')));
}

/** Numbers of an ECharts option's series data: plain values, [x, y] pairs and {value} items. */
export function seriesValues(option: any): number[] {
  const series = Array.isArray(option?.series) ? option.series : option?.series ? [option.series] : [];
  const values: number[] = [];
  const take = (item: unknown): void => {
    if (typeof item === 'number') values.push(item);
    else if (typeof item === 'string' && item.trim() !== '' && !Number.isNaN(Number(item))) values.push(Number(item));
    else if (Array.isArray(item) && item.length > 0) take(item[item.length - 1]);
    else if (item && typeof item === 'object' && 'value' in item) take((item as { value: unknown }).value);
  };
  for (const s of series) for (const item of Array.isArray(s?.data) ? s.data : []) take(item);
  // Also the `dataset.source` form (rows of [label, value, …]).
  const datasets = Array.isArray(option?.dataset) ? option.dataset : option?.dataset ? [option.dataset] : [];
  for (const d of datasets) for (const row of Array.isArray(d?.source) ? d.source : []) {
    if (Array.isArray(row)) for (const cell of row.slice(1)) if (typeof cell === 'number') values.push(cell);
  }
  return values;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

export interface ConsoleGuard {
  /** Tolerate console errors matching `pattern` in this test (e.g. an expected 4xx response). */
  allow(pattern: RegExp): void;
  /** Uncaught page errors seen so far in this test. */
  pageErrors(): string[];
}

type TestFixtures = {
  consoleGuard: ConsoleGuard;
  gateway: Gateway;
  kt: KtConsole;
};

type WorkerFixtures = {
  creds: Credentials;
  gatewayKey: string;
};

export const test = base.extend<TestFixtures, WorkerFixtures>({
  creds: [
    async ({}, use) => {
      await use({ email: ADMIN_EMAIL, password: await readDemoFile('demo-admin-password') });
    },
    { scope: 'worker' },
  ],

  gatewayKey: [
    async ({}, use) => {
      await use(await readDemoFile('demo-gateway-key'));
    },
    { scope: 'worker' },
  ],

  consoleGuard: [
    async ({ page }, use, testInfo) => {
      const problems: { text: string; allowable: boolean }[] = [];
      const allowed: RegExp[] = [];
      page.on('pageerror', (err) => {
        problems.push({ text: `pageerror: ${err.stack ?? err.message}`, allowable: false });
      });
      page.on('console', (msg) => {
        if (msg.type() !== 'error') return;
        const loc = msg.location();
        const where = loc.url ? ` (${loc.url}:${loc.lineNumber}:${loc.columnNumber})` : '';
        problems.push({ text: `console.error: ${msg.text()}${where}`, allowable: true });
      });
      await use({
        allow: (pattern) => allowed.push(pattern),
        pageErrors: () => problems.filter((p) => !p.allowable).map((p) => p.text),
      });
      const failures = problems
        .filter((p) => !(p.allowable && allowed.some((re) => re.test(p.text))))
        .map((p) => p.text);
      if (failures.length > 0) {
        await testInfo.attach('browser-errors.txt', { body: failures.join('\n\n'), contentType: 'text/plain' });
        throw new Error(`The page reported ${failures.length} error(s):\n${failures.join('\n')}`);
      }
    },
    { auto: true },
  ],

  gateway: async ({ request, gatewayKey }, use) => {
    await use(new Gateway(request, gatewayKey));
  },

  kt: async ({ page, javaScriptEnabled, creds, consoleGuard }, use) => {
    await use(new KtConsole(page, javaScriptEnabled !== false, creds, consoleGuard));
  },
});

// ---------------------------------------------------------------------------------------------
// Console pages beyond the Dashboard (Cost Center, Settings, roles): the `ui` fixture.
//
// Every mutation in the console is a plain `<form method="post" action="/api/…">` whose server
// function stores a one-time flash message in the session and redirects back (post → redirect →
// get), so the same helpers work with and without JavaScript.

/** The text a page shows when the signed-in role may not open it. */
export const FORBIDDEN_TEXT = 'Your role does not give access to this page.';

/** A short unique suffix for names (teams, users, keys); starts with a letter-safe timestamp. */
export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
}

/** A fresh e-mail address for an invited user. */
export function uniqueEmail(prefix = 'e2e'): string {
  return `${prefix}-${uniqueSuffix()}@example.com`;
}

/** A fresh team slug (lowercase letter first, letters, digits and dashes). */
export function uniqueSlug(prefix = 'e2e'): string {
  return `${prefix}-${uniqueSuffix()}`;
}

/** "$12.3456" → 12.3456 */
export function parseUsd(text: string): number {
  const m = /(-?)\$(\d[\d,]*\.\d+)/.exec(text);
  if (!m) throw new Error(`no USD amount in "${text}"`);
  return Number(m[2].replace(/,/g, '')) * (m[1] === '-' ? -1 : 1);
}

export class ConsoleUi {
  constructor(
    readonly page: Page,
    readonly kt: KtConsole,
  ) {}

  // --- pages and artifacts ---

  /** Saves a full-page screenshot as a test artifact (`<name>.png` in the test's output dir). */
  async shot(name: string): Promise<void> {
    const file = base.info().outputPath(`${name.replace(/[^\w.-]+/g, '-')}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
  }

  /** Opens `path`, waits for hydration (JS project) and saves a screenshot when `shot` is given. */
  async visit(path: string, shot?: string): Promise<void> {
    await this.page.goto(path);
    await this.kt.settle();
    if (shot) await this.shot(shot);
  }

  heading(text: string | RegExp): Locator {
    const re = typeof text === 'string' ? new RegExp(`^\\s*${escapeRegExp(text)}\\s*$`) : text;
    return this.page.locator('main h1').filter({ hasText: re });
  }

  topNav(): Locator {
    return this.page.locator('header.topbar nav.primary');
  }

  /** The labels of the top navigation, in order. */
  async topNavLabels(): Promise<string[]> {
    return (await this.topNav().locator('a').allTextContents()).map((t) => t.trim());
  }

  settingsTabs(): Locator {
    return this.page.locator('nav.tabs');
  }

  async settingsTabLabels(): Promise<string[]> {
    return (await this.settingsTabs().locator('a').allTextContents()).map((t) => t.trim());
  }

  crumbs(): Locator {
    return this.page.locator('nav.crumbs');
  }

  role(): Locator {
    return this.page.getByTestId('role');
  }

  // --- sign-in as someone other than the demo admin ---

  /** Signs in with the login form and expects to land on `landing`. */
  async signInAs(email: string, password: string, landing = '/'): Promise<void> {
    await this.kt.openLogin();
    await this.kt.submitLogin(email, password);
    await this.kt.expectPath(landing);
    await this.kt.settle();
  }

  // --- forms and flash messages ---

  flash(): Locator {
    return this.page.getByTestId('flash');
  }

  secret(): Locator {
    return this.page.getByTestId('secret');
  }

  /**
   * Clicks a submit button of a plain form and waits for the redirect that follows the post
   * (the GET document request redirected from the POST), then for hydration.
   */
  async submit(button: Locator): Promise<void> {
    const followed = this.page.waitForResponse(
      (res) => {
        const req = res.request();
        return req.isNavigationRequest() && req.method() === 'GET' && req.redirectedFrom()?.method() === 'POST';
      },
      { timeout: 20_000 },
    );
    await button.click();
    await followed;
    await this.page.waitForLoadState('load');
    await this.kt.settle();
  }

  /** Expects an ok flash containing `text`. */
  async expectFlashOk(text: string | RegExp): Promise<void> {
    await expect(this.flash()).toBeVisible();
    await expect(this.flash(), 'the flash reports success (class "flash ok")').toHaveClass(/(^|\s)ok(\s|$)/);
    await expect(this.flash()).toContainText(text);
  }

  /** The one-time secret shown in the flash (trimmed). */
  async takeSecret(): Promise<string> {
    await expect(this.secret()).toBeVisible();
    const secret = ((await this.secret().textContent()) ?? '').trim();
    expect(secret.length, 'a one-time secret in [data-testid=secret]').toBeGreaterThan(0);
    return secret;
  }

  // --- Settings › Teams ---

  teamSection(slug: string): Locator {
    return this.page.locator(`section.team[data-team="${slug}"]`);
  }

  /** Creates a team as an org admin (on /settings/teams) and checks it is listed. */
  async createTeam(slug: string, name = `Team ${slug}`): Promise<void> {
    if (new URL(this.page.url()).pathname !== '/settings/teams') await this.visit('/settings/teams');
    const form = this.page.locator('form#create-team');
    await form.locator('input[name="name"]').fill(name);
    await form.locator('input[name="slug"]').fill(slug);
    await this.submit(form.getByRole('button', { name: 'Create team' }));
    await this.expectFlashOk(`Created team ${name} (${slug})`);
    await expect(this.teamSection(slug)).toBeVisible();
  }

  // --- Settings › Users ---

  /**
   * Invites a user as an org admin (on /settings/users) and returns the one-time password from
   * the flash. `teamSlug` picks the team by its label; omitted, the "(none…)" choice is kept.
   */
  async inviteUser(email: string, role: 'admin' | 'team_lead' | 'member' | 'viewer', teamSlug?: string): Promise<string> {
    if (new URL(this.page.url()).pathname !== '/settings/users') await this.visit('/settings/users');
    const form = this.page.locator('form#invite-user');
    await form.locator('input[name="email"]').fill(email);
    await form.locator('select[name="role"]').selectOption(role);
    if (teamSlug) await form.locator('select[name="team_id"]').selectOption({ label: teamSlug });
    else await form.locator('select[name="team_id"]').selectOption('');
    await this.submit(form.getByRole('button', { name: 'Invite' }));
    await this.expectFlashOk(`Invited ${email}`);
    const password = await this.takeSecret();
    await expect(this.page.locator(`table#users tr[data-user="${email}"]`)).toBeVisible();
    return password;
  }

  // --- Settings › Keys ---

  keyRow(name: string): Locator {
    return this.page.locator(`table#keys tr[data-key-name="${name}"]`);
  }

  /**
   * Creates a key on /settings/keys and returns its one-time secret. `teamSlug` picks the team by
   * its label; `''` picks the org-wide (empty) choice; omitted, the form's default is kept.
   */
  async createKey(name: string, kind: 'gateway' | 'access', teamSlug?: string): Promise<string> {
    if (new URL(this.page.url()).pathname !== '/settings/keys') await this.visit('/settings/keys');
    const form = this.page.locator('form#create-key');
    await form.locator('input[name="name"]').fill(name);
    await form.locator('select[name="kind"]').selectOption(kind);
    if (teamSlug === '') await form.locator('select[name="team_id"]').selectOption('');
    else if (teamSlug) await form.locator('select[name="team_id"]').selectOption({ label: teamSlug });
    await this.submit(form.getByRole('button', { name: 'Create key' }));
    await this.expectFlashOk(`Created ${kind} key`);
    await expect(this.flash()).toContainText(name);
    return this.takeSecret();
  }

  // --- Settings › Onboarding templates ---

  templateRow(name: string): Locator {
    return this.page.locator(`table#templates tr[data-template="${name}"]`);
  }

  templateEditor(): Locator {
    return this.page.locator('form#template-editor');
  }

  templateContent(): Locator {
    return this.templateEditor().locator('textarea#template-content');
  }

  /** Opens the editor of template `name` (`/settings/templates?name=…`) and returns its content. */
  async openTemplate(name: string): Promise<string> {
    await this.visit(templatePath(name));
    await expect(this.page.locator('#editor-title')).toHaveText(`Edit ${name}`);
    await expect(this.templateEditor().locator('input[type="hidden"][name="name"]')).toHaveValue(name);
    return this.templateContent().inputValue();
  }

  /** Fills the template editor and clicks "Lint and save" (a form post, then the page again). */
  async saveTemplate(name: string, content: string): Promise<void> {
    await this.templateContent().fill(content);
    await this.submit(this.templateEditor().getByRole('button', { name: 'Lint and save' }));
    await this.kt.expectPath('/settings/templates');
    expect(new URL(this.page.url()).searchParams.get('name'), 'back on the editor of the template').toBe(name);
  }

  /**
   * After a refused save: the error flash, nothing saved, the refused `content` numbered with each
   * error under its line (`errors`: line → the error's text), and the editor holding `content`.
   */
  async expectTemplateRefused(content: string, errors: Record<number, { code: string; error: string }>): Promise<void> {
    const count = Object.keys(errors).length;
    await expect(this.flash()).toHaveClass(/(^|\s)error(\s|$)/);
    await expect(this.flash()).toContainText(
      `Not saved: ${count} lint error${count === 1 ? '' : 's'} (shown at their lines below). ` +
        'Teams onboarded from now on get the saved template.',
    );
    const problems = this.page.locator('#problems');
    await expect(problems.locator('h2')).toHaveText(`Refused: ${count} lint error(s)`);
    await expect(problems.locator('ol.numbered > li')).toHaveCount(content.trimEnd().split('\n').length);
    await expect(problems.locator('li.error-line')).toHaveCount(count);
    for (const [line, { code, error }] of Object.entries(errors)) {
      const li = problems.locator(`li[data-line="${line}"]`);
      await expect(li).toHaveClass(/(^|\s)error-line(\s|$)/);
      await expect(li.locator('code')).toHaveText(code);
      await expect(li.locator('.lint-error')).toContainText(error);
    }
    await expect(this.templateContent()).toHaveValue(content);
  }

  /**
   * After a save: the ok flash, no refused content, the editor holding `content`, and the
   * template's row naming the demo admin as its last changer.
   */
  async expectTemplateSaved(name: string, content: string): Promise<void> {
    await this.expectFlashOk(
      `Saved template ${name}: teams onboarded from now on start from it; existing teams keep their configuration.`,
    );
    await expect(this.page.locator('#problems')).toHaveCount(0);
    await expect(this.templateContent()).toHaveValue(content);
    await expect(this.templateRow(name).locator('td').nth(2)).toHaveText(
      new RegExp(`^\\s*\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\s*by ${escapeRegExp(ADMIN_ACTOR)}\\s*$`),
    );
  }

  /** The audit log has exactly one `template.put` of `name` by the admin from `before` to `after`. */
  async expectTemplateAudited(name: string, before: string, after: string): Promise<void> {
    await this.visit('/audit?action=template.put');
    await expect(this.heading('Audit log')).toBeVisible();
    const rows = this.page
      .locator('table#audit tr[data-action="template.put"]')
      .filter({ has: this.page.locator('td:nth-child(4)', { hasText: new RegExp(`^\\s*template ${name}\\s*$`) }) })
      .filter({ has: this.page.locator('td:nth-child(7)', { hasText: auditContentHash(after) }) });
    await expect(rows, `a template.put of ${name} to content_hash ${auditContentHash(after)}`).toHaveCount(1);
    const cells = rows.locator('td');
    await expect(cells.nth(1)).toHaveText(ADMIN_ACTOR);
    await expect(cells.nth(4)).toHaveText('');
    await expect(cells.nth(5)).toHaveText(`{"content_hash":"${auditContentHash(before)}"}`);
    await expect(cells.nth(6)).toHaveText(`{"content_hash":"${auditContentHash(after)}"}`);
  }

  /**
   * Puts a template back as it was (a plain form post with the page's session), whatever page the
   * browser is on; for `finally` blocks, so that a failed test does not leave an edited template.
   */
  async restoreTemplate(name: string, content: string): Promise<void> {
    await this.page.request.post('/api/save_template', { form: { name, content } });
    // The outcome waits in the session for the next page: the editor's, which shows (and takes) it.
    const html = await (await this.page.request.get(templatePath(name))).text();
    expect(html, `restoring template ${name}`).toContain(`Saved template ${name}:`);
  }
}

/** The editor of an onboarding template. */
export function templatePath(name: string): string {
  return `/settings/templates?name=${encodeURIComponent(name)}`;
}

/** The content hash the audit log records for a template: SHA-256, first 8 bytes, hex. */
export function auditContentHash(content: string): string {
  return createHash('sha256').update(content, 'utf8').digest('hex').slice(0, 16);
}

/** A gateway client with another key than the demo one. */
export function gatewayWithKey(request: APIRequestContext, key: string): Gateway {
  return new Gateway(request, key);
}

/** `test` with the `ui` fixture (Cost Center, Settings and role helpers). */
export const consoleTest = test.extend<{ ui: ConsoleUi }>({
  ui: async ({ page, kt }, use) => {
    await use(new ConsoleUi(page, kt));
  },
});

// ---------------------------------------------------------------------------------------------
// Onboarding through the API

/** The body of `POST /v1/onboarding/requests` (`NewOnboarding` in the server's API). */
export interface OnboardingFields {
  team_name: string;
  team_slug: string;
  lead_email: string;
  /** `std`, `reg`, `exp`, or another template. */
  template: string;
  /** USD per calendar month. */
  monthly_budget: number;
  models: string[];
  /** Default `production`. */
  environment?: string;
  use_case?: string;
}

/** A provisioning step in an onboarding request's answer. */
export interface OnboardingStep {
  /** `team`, `config`, `wallet`, `key`, `gateway` */
  step: string;
  /** `pending`, `running`, `done`, `failed` */
  status: string;
  detail: string | null;
  at: string | null;
}

/**
 * The answer to `POST /v1/onboarding/requests/{id}/approve` once the pipeline is `ready`
 * (`onboardThroughApi` has checked `status`, `gateway_url` and `gateway_key`).
 */
export interface OnboardingApproval {
  id: string;
  team_name: string;
  team_slug: string;
  lead_email: string;
  use_case: string;
  template: string;
  monthly_budget: number;
  models: string[];
  environment: string;
  status: string;
  reason: string | null;
  steps: OnboardingStep[];
  team_id: string;
  gateway_name: string | null;
  /** The gateway's base URL (`http://127.0.0.1:PORT`). */
  gateway_url: string;
  requested_by: string;
  created_at: string;
  decided_by: string | null;
  decided_at: string | null;
  /** Shown only in the answer to the approval that created it (`kt_gk_…`). */
  gateway_key: string;
}

export interface OnboardOptions {
  /** How long the approval (the whole provisioning pipeline, a gateway process starting) may take. */
  approveTimeout?: number;
}

/**
 * Files an onboarding request through the API (`auth`: the headers of an org admin's access key)
 * and approves it at once: the request is created (201), the approval answers 200 with the
 * pipeline `ready`, a local gateway URL and a fresh gateway key. Returns the request's id, the
 * approval's answer (`approval`) and its raw text (`body`, for assertion messages).
 */
export async function onboardThroughApi(
  request: APIRequestContext,
  auth: Record<string, string>,
  fields: OnboardingFields,
  opts: OnboardOptions = {},
): Promise<{ requestId: string; approval: OnboardingApproval; body: string }> {
  const filed = await request.post('/v1/onboarding/requests', {
    headers: auth,
    data: fields,
    failOnStatusCode: false,
  });
  expect(filed.status(), `POST /v1/onboarding/requests: ${await filed.text()}`).toBe(201);
  const requestId: string = (await filed.json()).id;
  const approved = await request.post(`/v1/onboarding/requests/${requestId}/approve`, {
    headers: auth,
    failOnStatusCode: false,
    timeout: opts.approveTimeout ?? 30_000,
  });
  const body = await approved.text();
  expect(approved.status(), `approving ${requestId}: ${body}`).toBe(200);
  const approval: OnboardingApproval = JSON.parse(body);
  expect(approval.status, `the pipeline's result: ${body}`).toBe('ready');
  expect(approval.gateway_url, body).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(approval.gateway_key, body).toMatch(/^kt_gk_\S+$/);
  return { requestId, approval, body };
}

/** A cell of `row` in the table `table` (a CSS selector) by its column header. */
export async function cellByHeader(page: Page, table: string, row: Locator, header: string): Promise<Locator> {
  const headers = (await page.locator(`${table} thead th`).allTextContents()).map((h) => h.trim());
  const i = headers.indexOf(header);
  expect(i, `a "${header}" column in ${table} (headers: ${JSON.stringify(headers)})`).toBeGreaterThanOrEqual(0);
  return row.locator('td').nth(i);
}

/** Someone else's session, in its own browser context. */
export interface Elsewhere {
  page: Page;
  kt: KtConsole;
  ui: ConsoleUi;
  /** Fails when a page of this context threw or logged an error (as the `consoleGuard` fixture does). */
  expectNoErrors: () => void;
  close: () => Promise<void>;
}

/**
 * Signs someone else in, in a fresh browser context (own cookies), with JavaScript on unless
 * `js: false`; `expectNoErrors` fails on an uncaught error or a console error not matching
 * `allowed` (the same rule as the `consoleGuard` fixture).
 */
export async function signInElsewhere(
  browser: Browser,
  email: string,
  password: string,
  opts: { allowed?: RegExp[]; js?: boolean } = {},
): Promise<Elsewhere> {
  const js = opts.js ?? true;
  const allowed = opts.allowed ?? [];
  const context = await browser.newContext({ baseURL: test.info().project.use.baseURL, javaScriptEnabled: js });
  const page = await context.newPage();
  const thrown: string[] = [];
  const logged: string[] = [];
  page.on('pageerror', (err) => thrown.push(`pageerror: ${err.stack ?? err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !allowed.some((re) => re.test(msg.text()))) logged.push(`console.error: ${msg.text()}`);
  });
  const kt = new KtConsole(page, js, { email, password }, { allow: () => {}, pageErrors: () => thrown });
  const ui = new ConsoleUi(page, kt);
  await ui.signInAs(email, password, '/');
  return {
    page,
    kt,
    ui,
    expectNoErrors: () => expect([...thrown, ...logged], `errors reported by the pages seen as ${email}`).toEqual([]),
    close: () => context.close(),
  };
}

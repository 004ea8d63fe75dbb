import type { Locator, Page } from '@playwright/test';
import type { ConsoleUi } from './fixtures';

// What the onboarding browser tests (with and without JavaScript) share: the pipeline's steps,
// the form's fields and buttons, the request tables, and a record of the request page's loads.

export const STEPS = ['team', 'config', 'wallet', 'key', 'gateway'];

export function form(page: Page): Locator {
  return page.locator('form#onboarding-form');
}

export function field(page: Page, name: string): Locator {
  return page.locator(`#f-${name}`);
}

export async function sendRequest(page: Page, ui: ConsoleUi): Promise<void> {
  await ui.submit(form(page).getByRole('button', { name: 'Send request' }));
}

export function requestRow(page: Page, table: 'mine' | 'queue' | 'recent', slug: string): Locator {
  return page.locator(`table#${table} tr[data-slug="${slug}"]`);
}

/** What one load of a request's page showed: its status, and whether the key box was on it. */
export interface PageLoad {
  status: string;
  key: boolean;
  running: string[];
}

/**
 * Records every load of `/onboarding/ID` (the page refreshes itself while provisioning), so that
 * a failed expectation about the one-time key can say on which load the key was shown.
 */
export function watchRequestPage(page: Page, id: string): PageLoad[] {
  const loads: PageLoad[] = [];
  page.on('response', async (res) => {
    const req = res.request();
    if (!req.isNavigationRequest() || req.method() !== 'GET') return;
    if (new URL(res.url()).pathname !== `/onboarding/${id}` || res.status() !== 200) return;
    try {
      const html = await res.text();
      loads.push({
        status: /id="request-status"[^>]*>([^<]*)</.exec(html)?.[1] ?? '?',
        key: html.includes('id="secret-once"'),
        running: [...html.matchAll(/data-step="([a-z]+)" class="step-running"/g)].map((m) => m[1]),
      });
    } catch {
      // The body of a document replaced by the next refresh may be gone.
    }
  });
  return loads;
}

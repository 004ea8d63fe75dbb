import { test, expect } from './fixtures';

// (a) Signing in and out, with JavaScript on.

test('signed out, the Dashboard redirects to the login page', async ({ page, kt }) => {
  await page.goto('/');
  await kt.expectPath('/login');
  await expect(kt.loginForm().locator('input[name="email"]')).toBeVisible();
  await expect(kt.loginForm().locator('input[name="password"]')).toBeVisible();
  await expect(kt.loginForm().locator('button[type="submit"]', { hasText: 'Sign in' })).toBeVisible();
  await expect(kt.dashboardHeading()).toHaveCount(0);
  await kt.settle();
});

test('a wrong password shows an alert and stays on the login page', async ({ page, kt, creds, consoleGuard }) => {
  // A rejected sign-in may be answered with a 4xx, which Chromium logs as a failed resource load.
  consoleGuard.allow(/Failed to load resource: the server responded with a status of 4\d\d/);

  await kt.openLogin();
  await kt.submitLogin(creds.email, `${creds.password}-wrong`);

  await expect(page.getByRole('alert')).toContainText('Invalid email or password');
  await kt.expectPath('/login');
  await expect(kt.loginForm().locator('button[type="submit"]', { hasText: 'Sign in' })).toBeVisible();
  await kt.settle();

  // And it did not sign us in.
  await page.goto('/');
  await kt.expectPath('/login');
});

test('the demo admin signs in, reaches the Dashboard and signs out', async ({ page, kt }) => {
  await kt.signIn();
  await kt.settle();
  await expect(page.getByRole('alert')).toHaveCount(0);

  // Signed in, `/` is the Dashboard rather than a redirect.
  await kt.gotoDashboard();

  await kt.signOut();
  await kt.expectSignedOut();
});

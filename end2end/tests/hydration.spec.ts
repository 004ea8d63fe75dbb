import { test, expect, uniqueModel } from './fixtures';

// (c) After hydration: the client-side event filter and the ECharts chart.

test('after hydration the event filter narrows the table and the chart is drawn', async ({ page, kt, gateway }) => {
  const model = uniqueModel();
  const otherModel = uniqueModel();
  await gateway.expectCompletion(model);
  await gateway.expectCompletion(otherModel);

  await kt.signIn();
  await kt.gotoDashboardListing(model, otherModel);
  await kt.waitForHydration();
  await expect(page.locator('main[data-hydrated="false"]')).toHaveCount(0);

  const visibleRows = kt.eventRows().filter({ visible: true });
  await expect(kt.eventRowsWith(model)).toHaveCount(1);
  await expect(kt.eventRowsWith(otherModel)).toHaveCount(1);
  const total = await visibleRows.count();
  expect(total, 'rows before filtering').toBeGreaterThanOrEqual(2);

  const filter = page.locator('#event-filter');
  await expect(filter).toBeVisible();
  await filter.fill(model);

  await expect(visibleRows).toHaveCount(1);
  await expect(visibleRows.first()).toContainText(model);
  await expect(kt.eventRowsWith(otherModel).filter({ visible: true })).toHaveCount(0);
  await expect(page.getByTestId('event-count')).toHaveText(new RegExp(`(^|\\D)1 of ${total} events?\\b`));

  // Clearing the filter brings every row back.
  await filter.fill('');
  await expect(visibleRows).toHaveCount(total);

  // The chart script draws the requests chart with the SVG renderer.
  await expect(kt.requestsChart().locator('svg').first()).toBeVisible({ timeout: 15_000 });
});

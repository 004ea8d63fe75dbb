import { test, expect, uniqueModel, seriesValues } from './fixtures';

// (b) Gateway traffic shows up on the Dashboard.

test('requests through the gateway appear on the Dashboard', async ({ kt, gateway }) => {
  const model = uniqueModel();
  const streamedModel = uniqueModel();

  await kt.signIn();
  await kt.settle();
  const requestsBefore = await kt.statCount('requests');

  await gateway.expectCompletion(model);
  await gateway.expectStreamedCompletion(streamedModel);

  await kt.gotoDashboardListing(model, streamedModel);

  // The plain request: one row with its model, verdict "allow" and the "demo" badge.
  const row = kt.eventRowsWith(model);
  await expect(row).toHaveCount(1);
  await expect(row).toBeVisible();
  await expect(row).toHaveAttribute('data-event-id', /\S/);
  await expect(kt.cellText(row, model)).toBeVisible();
  await expect(kt.cellText(row, 'allow')).toBeVisible();
  await expect(kt.cellText(row, 'demo')).toBeVisible();

  // The streamed request: its own row, allowed, with tokens counted from the stream.
  const streamedRow = kt.eventRowsWith(streamedModel);
  await expect(streamedRow).toHaveCount(1);
  await expect(streamedRow).toHaveAttribute('data-event-id', /\S/);
  await expect(kt.cellText(streamedRow, 'allow')).toBeVisible();
  await expect(kt.cellText(streamedRow, 'demo')).toBeVisible();
  expect(await kt.rowTokens(streamedRow), 'tokens of the streamed request').toBeGreaterThan(0);
  expect(await kt.rowTokens(row), 'tokens of the plain request').toBeGreaterThan(0);

  // Stat cards.
  const requestsAfter = await kt.statCount('requests');
  expect(requestsAfter).toBeGreaterThanOrEqual(1);
  expect(requestsAfter, `stat-requests was ${requestsBefore} before the two requests`).toBeGreaterThanOrEqual(
    requestsBefore + 2,
  );
  await expect(kt.stat('spend')).not.toContainText('$0.0000');
  expect(await kt.statSpend()).toBeGreaterThan(0);
});

test('the requests chart carries its numbers in data-option and in a data table', async ({ kt, gateway }) => {
  const model = uniqueModel();
  await gateway.expectCompletion(model);

  await kt.signIn();
  await kt.gotoDashboardListing(model);

  await expect(kt.requestsChart()).toBeAttached();
  const option = await kt.requestsChartOption();
  const values = seriesValues(option);
  expect(values.length, `series data in data-option: ${JSON.stringify(option)}`).toBeGreaterThan(0);
  expect(
    values.reduce((a, b) => a + b, 0),
    `the chart counts the request just made: ${JSON.stringify(option)}`,
  ).toBeGreaterThanOrEqual(1);

  // The table beside the chart shows the same numbers.
  const table = kt.requestsChartTable();
  await expect(table).toHaveCount(1);
  await expect(table).toBeAttached();
  const cells = await table.locator('td, th').allTextContents();
  const tableNumbers = cells
    .map((c) => c.trim())
    .filter((c) => /^\$?\d[\d,]*(\.\d+)?$/.test(c))
    .map((c) => Number(c.replace(/[$,]/g, '')));
  // The table lists the periods with traffic; the chart also draws the empty ones (zeros).
  for (const v of values.filter((v) => v !== 0)) {
    expect(
      tableNumbers.some((t) => Math.abs(t - v) <= 1e-6 + Math.abs(v) * 0.005),
      `chart value ${v} appears in table.kt-chart-data (numeric cells: ${JSON.stringify(tableNumbers)})`,
    ).toBe(true);
  }
});

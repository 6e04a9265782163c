// Drives the node's web console in a real headless Chromium: sign in, search, open a timeline,
// requeue a dead letter, read the statistics and export them; screenshots of each page.
// Run by cli/tests/cluster/console.rs with CONSOLE_URL, TOKEN, OK_ID, DEAD_ID, PAST_EXPIRY_ID, SHOTS,
// CHROMIUM.
import { chromium } from "playwright-core";
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const [url, token, okId, deadId, pastExpiryId, shots] = ["CONSOLE_URL", "TOKEN", "OK_ID", "DEAD_ID", "PAST_EXPIRY_ID", "SHOTS"].map(env);

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: ["--ignore-certificate-errors", "--no-sandbox", "--disable-gpu"],
});
try {
  const page = await (await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } })).newPage();
  page.setDefaultTimeout(15000);

  // A wrong token is refused.
  await page.goto(url);
  await page.fill("#token", "wrong-token-wrong-token-wrong-token-0000");
  await page.click("#login button");
  await page.waitForSelector(".error");
  assert.match(await page.textContent(".error"), /refused/);

  // Sign in; search the recognised messages.
  await page.fill("#token", token);
  await page.click("#login button");
  await page.waitForSelector("#search");
  await page.selectOption("select[name=state]", "recognised");
  await page.click("#search-button");
  await page.waitForSelector(`#results a[href="#/message/${okId}"]`);
  assert.ok(!(await page.textContent("#results")).includes(deadId), "the dead letter is not among the recognised");
  await page.screenshot({ path: `${shots}/messages.png`, fullPage: true });

  // The timeline of one message, with its verdict and receipt.
  await page.click(`#results a[href="#/message/${okId}"]`);
  await page.waitForSelector("#timeline");
  const timeline = await page.textContent("#timeline");
  for (const s of ["queued", "delivered", "recognised"]) assert.ok(timeline.includes(s), `timeline lacks ${s}: ${timeline}`);
  assert.match(await page.textContent("#verdict"), /recognised/);
  assert.match(await page.textContent("#receipt"), /rc:Receipt/);
  await page.screenshot({ path: `${shots}/timeline.png`, fullPage: true });

  // The dead letter, requeued from the dead-letter page.
  await page.click('nav a[data-view="dead"]');
  await page.waitForSelector(`button.requeue[data-id="${deadId}"]`);
  // The one past its signed expiry offers no button that cannot work, but the reason.
  const pastExpiry = page.locator("#results tr", { hasText: pastExpiryId });
  assert.equal(await pastExpiry.locator("button.requeue").count(), 0, "no requeue button past the signed expiry");
  assert.match(await pastExpiry.locator(".requeue-refused").textContent(), /ExpiresAt.*submit the document again/);
  await page.screenshot({ path: `${shots}/dead-letters.png`, fullPage: true });
  await page.click(`button.requeue[data-id="${deadId}"]`);
  await page.waitForSelector(".notice");
  assert.match(await page.textContent(".notice"), new RegExp(`Requeued ${deadId} for RU`));
  assert.equal(await page.$(`button.requeue[data-id="${deadId}"]`), null, "it left the dead letters");

  // Peers and the trust space.
  await page.click('nav a[data-view="peers"]');
  await page.waitForSelector("#peers");
  assert.match(await page.textContent("#peers"), /RU/);
  await page.click('nav a[data-view="trust"]');
  await page.waitForSelector("#directories");
  assert.match(await page.textContent("#directories"), /P\.CLS\.HS/);

  // Statistics, and the CSV export.
  await page.click('nav a[data-view="stats"]');
  await page.waitForSelector("#per-peer");
  assert.ok(Number(await page.textContent("#outgoing")) >= 2);
  assert.match(await page.textContent("#share"), /%/);
  assert.match(await page.textContent("#per-peer"), /RU/);
  await page.screenshot({ path: `${shots}/statistics.png`, fullPage: true });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
  const csv = readFileSync(await download.path(), "utf8");
  assert.match(csv, /^peer,process,messages,recognised,rejected,in_flight,dead_or_expired,median_ms,p95_ms\n/);
  assert.match(csv, /\nRU,P\.CC\.01,/);
  console.log("console: every step passed");
} finally {
  await browser.close();
}

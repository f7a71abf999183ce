// A new customer's whole journey through the web dashboard in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) against a real devstack on free loopback ports:
// sign up, the emailed code, paywall, a signed Sell.app purchase, the feed, live create/edit/delete
// over SSE, a phone-sized screen, sign out. Screenshots of every page go to artifacts/browser/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  SHOTS,
  WAIT_MS,
  appwrite as appwriteOn,
  mail,
  purchase,
  signIn,
  startDevstack,
  until,
} from "./lib.mjs";

const PASSWORD = "browser test password";

let stack;
let context;
let profile;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startDevstack("journey");
  // A fresh profile per run (Playwright takes it as the persistent context's directory);
  // nothing phones home.
  profile = mkdtempSync(join(tmpdir(), "g3-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await context?.close();
  await stack?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** The server-key Appwrite REST call the pipeline would make. */
const appwrite = (method, path, body) => appwriteOn(stack, method, path, body);

const SIGNALS = "/databases/g3/collections/signals/documents";

test("sign up, enter the code, pay, watch the feed live, sign out", async () => {
  const email = `browser-${randomBytes(4).toString("hex")}@example.com`;
  const page = context.pages()[0] ?? (await context.newPage());
  const cspErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content[- ]Security[- ]Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  page.on("pageerror", (e) => cspErrors.push(`page error: ${e.message}`));
  // The page's own record of CSP violations, besides what Chromium logs to the console.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const pageViolations = () => page.evaluate(() => window.__cspViolations ?? []);
  const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  // Sign up.
  await page.goto(`${stack.web}/signup`);
  await shot("01-signup");
  await page.fill("#email", email);
  await page.fill("#password", PASSWORD);
  await page.click("form[action='/signup'] button[type=submit]");
  // The same code page whether or not the email has an account.
  await page.waitForSelector("form[action='/signin/code/verify'] #code");
  assert.match(await page.textContent("main"), /One step left: enter the code from the email/);
  await shot("02-enter-code");

  // The code, as the emulator "sent" it, finishes the sign-up and verifies the address.
  const code = await mail(stack, email, "email_otp");
  await page.fill("#code", code.data.secret);
  await shot("03-code-entered");
  await Promise.all([page.waitForURL(/\/feed/), page.click("form[action='/signin/code/verify'] button[type=submit]")]);

  // Verified but unpaid: the paywall, with where to buy.
  await page.goto(`${stack.web}/feed`);
  await page.waitForSelector("#paywall");
  const paywall = await page.textContent("#paywall");
  assert.match(paywall, /No active plan/);
  assert.ok(await page.isVisible("#paywall a.button"), "a Buy link");
  await shot("04-paywall-unpaid");

  // Sell.app tells the webhook service about a purchase with this email.
  const delivered = await purchase(stack, email);
  assert.ok(delivered.ok, `webhook accepted the purchase: ${delivered.status} ${await delivered.text()}`);

  // Reload until the plan reached the account: the feed with the seeded signals.
  await until("the feed after the purchase", async () => {
    await page.reload();
    return (await page.locator("#feed article.card").count()) > 0;
  });
  await page.waitForLoadState("load");
  await shot("05-feed");
  assert.deepEqual(cspErrors, [], "no CSP violations or script errors on the feed page");
  assert.deepEqual(await pageViolations(), [], "no securitypolicyviolation events on the feed page");

  // A signal written to Appwrite appears without reload. Copy a seeded signal's shape.
  const { documents } = await appwrite("GET", `${SIGNALS}?queries[]=${encodeURIComponent(JSON.stringify({ method: "limit", values: [1] }))}`);
  assert.ok(documents.length > 0, "devstack seeded signals");
  const data = Object.fromEntries(Object.entries(documents[0]).filter(([k]) => !k.startsWith("$")));
  const id = `19${Date.now()}`;
  const marker = `browser live ${randomBytes(3).toString("hex")}`;
  Object.assign(data, {
    source_message_id: id,
    content: `${data.content}\n${marker}`,
    revision: 1,
    status: "live",
    posted_at: new Date().toISOString(),
  });
  // Nothing reloads from here on: count navigations to prove it.
  let navigations = 0;
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) navigations += 1;
  });
  await appwrite("POST", SIGNALS, { documentId: id, data });
  const card = page.locator(`#signal-${id}`);
  await card.waitFor({ timeout: WAIT_MS });
  assert.match(await card.textContent(), new RegExp(marker));
  await shot("06-live-created");

  // An edit shows up live: new text and the edited marker (`edited_at`, as the pipeline sets it).
  await appwrite("PATCH", `${SIGNALS}/${id}`, {
    data: { content: `${data.content}\nedited: stop to entry`, revision: 2, edited_at: new Date().toISOString() },
  });
  await page.waitForSelector(`#signal-${id}:has-text("edited: stop to entry") .marker.edited`, { timeout: WAIT_MS });
  await shot("07-live-edited");

  // A delete (a tombstone) shows up live.
  await appwrite("PATCH", `${SIGNALS}/${id}`, { data: { status: "deleted", revision: 3 } });
  await page.waitForSelector(`#signal-${id}.deleted`, { timeout: WAIT_MS });
  await shot("08-live-deleted");
  assert.equal(navigations, 0, "live changes arrived without a reload");
  assert.deepEqual(cspErrors, [], "no CSP violations while live events arrived");
  assert.deepEqual(await pageViolations(), [], "no securitypolicyviolation events while live");

  // A phone-sized screen: cards visible, nothing scrolls sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForSelector("#feed article.card");
  assert.ok(await page.locator("#feed article.card").first().isVisible(), "a card is visible on a phone");
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `no horizontal scroll at 390 px (content is ${scrollWidth} px wide)`);
  const box = await page.locator("#feed article.card").first().boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the card fits the screen: ${JSON.stringify(box)}`);
  await page.screenshot({ path: join(SHOTS, "09-feed-phone.png"), fullPage: false });
  await page.setViewportSize({ width: 1280, height: 900 });

  // Sign out: the feed is gone for this browser.
  await Promise.all([page.waitForNavigation(), page.click("header form[action='/signout'] button")]);
  await shot("10-signed-out");
  await page.goto(`${stack.web}/feed`);
  await until("the sign-in page after sign-out", async () => page.url().includes("/signin") || (await page.locator("#feed").count()) === 0);
  assert.equal(await page.locator("#feed").count(), 0, "no feed after sign-out");
  assert.ok(await page.isVisible("a[href='/signin']"), "offers sign-in again");
  await shot("11-feed-after-sign-out");

  // The password chosen at sign-up still works.
  await signIn(page, stack, { email, password: PASSWORD });
  await page.waitForSelector("#feed");
});

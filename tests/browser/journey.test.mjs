// A new customer's whole journey through the web dashboard in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) against a real devstack on free loopback ports:
// sign up, the emailed code, paywall, a signed Sell.app purchase, the feed, live create/edit/delete
// over SSE, a phone-sized screen, sign out. Screenshots of every page go to artifacts/browser/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SHOTS = join(ROOT, "artifacts", "browser");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const PASSWORD = "browser test password";
/// Every wait on a condition is bounded by this.
const WAIT_MS = 15_000;

/** A free loopback port (the OS picks it; released for devstack to take). */
function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
async function until(what, check, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** devstack on free ports with a scratch data directory; resolves once its banner is printed. */
async function startDevstack() {
  if (!process.env.DEVSTACK_BIN) {
    const built = spawnSync("cargo", ["build", "--locked", "-q", "-p", "devstack"], { cwd: ROOT, stdio: "inherit" });
    assert.equal(built.status, 0, "cargo build -p devstack");
  }
  const bin = process.env.DEVSTACK_BIN || join(ROOT, "target", "debug", "devstack");
  const data = mkdtempSync(join(tmpdir(), "g3-browser-"));
  const [e, w, b] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(bin, [], {
    cwd: ROOT,
    env: {
      ...process.env,
      DEVSTACK_DATA_DIR: data,
      DEVSTACK_EMULATOR_ADDR: `127.0.0.1:${e}`,
      DEVSTACK_WEBHOOK_ADDR: `127.0.0.1:${w}`,
      DEVSTACK_WEB_ADDR: `127.0.0.1:${b}`,
      DEVSTACK_DEMO_INTERVAL_SECS: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  let exited = false;
  child.once("exit", () => (exited = true));
  const stop = () => {
    if (!exited) child.kill("SIGINT");
    rmSync(data, { recursive: true, force: true });
  };
  try {
    await until("devstack's banner", () => {
      if (exited) throw new Error(`devstack exited early:\n${out}`);
      return out.includes("Press Ctrl-C");
    }, 120_000);
  } catch (err) {
    stop();
    throw err;
  }
  const pick = (re, what) => {
    const m = out.match(re);
    assert.ok(m, `${what} in the banner:\n${out}`);
    return m[1];
  };
  return {
    stop,
    web: pick(/Web dashboard\s+(http:\/\/\S+)/, "web URL"),
    emulator: `http://127.0.0.1:${e}`,
    project: pick(/Appwrite emulator\s+\S+\s+\(project (\S+),/, "project"),
    apiKey: pick(/Appwrite emulator\s+\S+\s+\(project \S+, API key ([^)\s]+)\)/, "server key"),
    webhook: pick(/Sell\.app webhook\s+(http:\/\/\S+)/, "webhook URL"),
    sellappSecret: pick(/Sell\.app webhook\s+\S+\s+\(secret ([^,]+),/, "Sell.app secret"),
  };
}

let stack;
let context;
let profile;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startDevstack();
  // A fresh profile per run (Playwright takes it as the persistent context's directory);
  // nothing phones home.
  profile = mkdtempSync(join(tmpdir(), "g3-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await context?.close();
  stack?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** The server-key Appwrite REST call the pipeline would make. */
async function appwrite(method, path, body) {
  const r = await fetch(`${stack.emulator}/v1${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      "x-appwrite-project": stack.project,
      "x-appwrite-key": stack.apiKey,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

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
  const mail = await until("the sign-up code", async () => {
    const r = await fetch(`${stack.emulator}/mailbox/api/messages?to=${encodeURIComponent(email)}`);
    const { messages } = await r.json();
    return messages.find((m) => m.kind === "email_otp");
  });
  await page.fill("#code", mail.data.secret);
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
  const body = JSON.stringify({
    event: "order.completed",
    store: 1,
    data: {
      id: 700000 + Math.floor(Math.random() * 100000),
      status: "COMPLETED",
      customer: { email },
      line_items: [{ id: 1, product_id: 3301, product_variant_id: 9001, quantity: 1 }],
    },
  });
  const signature = createHmac("sha256", stack.sellappSecret).update(body).digest("hex");
  const delivered = await fetch(stack.webhook, {
    method: "POST",
    headers: { "content-type": "application/json", signature },
    body,
  });
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
  await page.goto(`${stack.web}/signin`);
  await page.fill("#email", email);
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForURL(/\/feed/), page.click("form[action='/signin'] button[type=submit]")]);
  await page.waitForSelector("#feed");
});

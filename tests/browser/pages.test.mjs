// Every page of the web dashboard at two sizes, desktop (1366x900) and phone (390x844), in
// headless Chromium against one devstack: a screenshot of each
// (artifacts/browser/<page>-<size>.png), axe-core with no "serious" or "critical" violation
// (colour contrast also in the dark theme), and nothing wider than the screen (the phone above
// all). Signed out, as a new (unpaid, then Basic) customer, as the demo VIP customer (linked to
// the Discord sandbox) and as the demo staff member.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import {
  SHOTS,
  SIZES,
  axeProblems,
  launchChromium,
  mail,
  overflowProblems,
  purchase,
  settle,
  signIn,
  signUp,
  startDevstack,
  until,
} from "./lib.mjs";

const PASSWORD = "browser pages password";

let stack;
let browser;

before(async () => {
  stack = await startDevstack("pages");
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A fresh browser profile (cookies) at the first size, with script errors recorded. */
async function person() {
  const context = await browser.newContext({ viewport: { width: SIZES[0].width, height: SIZES[0].height } });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  return page;
}

/**
 * Checks the page as it is now, at every size: a full-page screenshot, axe-core, and the
 * overflow check (nothing wider than the screen, the phone being the size that matters); then axe's colour contrast once more in the dark theme (desktop,
 * screenshot <page>-desktop-dark.png). Fails with every problem found, not only the first.
 */
async function check(t, page, name) {
  const problems = [];
  const mild = new Set();
  for (const size of SIZES) {
    await page.setViewportSize({ width: size.width, height: size.height });
    await settle(page);
    await page.screenshot({ path: join(SHOTS, `${name}-${size.name}.png`), fullPage: true });
    const axe = await axeProblems(page);
    axe.mild.forEach((m) => mild.add(m));
    problems.push(...axe.lines.map((l) => `[${size.name}] ${l}`));
    const wide = await overflowProblems(page);
    problems.push(...wide.map((l) => `[${size.name}] overflow: ${l}`));
  }
  // The dark theme follows the system setting: its colours get the contrast check too.
  await page.setViewportSize({ width: SIZES[0].width, height: SIZES[0].height });
  await page.emulateMedia({ colorScheme: "dark" });
  try {
    await settle(page);
    await page.screenshot({ path: join(SHOTS, `${name}-${SIZES[0].name}-dark.png`), fullPage: true });
    const dark = await axeProblems(page, { rules: ["color-contrast"] });
    problems.push(...dark.lines.map((l) => `[${SIZES[0].name} dark] ${l}`));
  } finally {
    await page.emulateMedia({ colorScheme: "light" });
  }
  if (page.errors.length) problems.push(`script errors: ${page.errors.splice(0).join("; ")}`);
  if (mild.size) t.diagnostic(`milder axe findings (not failing): ${[...mild].join(", ")}`);
  assert.ok(problems.length === 0, `${name} (${page.url()}):\n  ${problems.join("\n  ")}`);
}

/** Opens `path` and checks the page; `expect` (a selector) proves it is the intended page. */
async function visit(t, page, name, path, expect) {
  await page.goto(`${stack.web}${path}`);
  if (expect) await page.waitForSelector(expect, { timeout: 5_000 });
  await check(t, page, name);
}

test("signed out: landing, sign in, sign up, codes, verify, recover, 404, results, rules", async (t) => {
  const page = await person();
  await t.test("landing", async (t) => {
    const r = await page.goto(`${stack.web}/`);
    if (new URL(page.url()).pathname !== "/") t.diagnostic(`/ leads to ${new URL(page.url()).pathname} (status ${r.status()})`);
    await check(t, page, "landing");
  });
  await t.test("sign in", (t) => visit(t, page, "signin", "/signin", "form[action='/signin']"));
  await t.test("sign in, wrong password", async (t) => {
    await page.goto(`${stack.web}/signin`);
    await page.fill("#email", `nobody-${randomBytes(3).toString("hex")}@example.com`);
    await page.fill("#password", "not the password");
    await Promise.all([page.waitForLoadState("load"), page.click("form[action='/signin'] button[type=submit]")]);
    await page.waitForSelector(".error");
    await check(t, page, "signin-error");
  });
  await t.test("sign up", (t) => visit(t, page, "signup", "/signup", "form[action='/signup']"));
  await t.test("sign-in code, request", (t) => visit(t, page, "code-request", "/signin/code", "form[action='/signin/code']"));
  await t.test("sign-in code, enter", async (t) => {
    await page.goto(`${stack.web}/signin/code`);
    await page.fill("#email", `code-${randomBytes(3).toString("hex")}@example.com`);
    await page.click("form[action='/signin/code'] button[type=submit]");
    await page.waitForSelector("form[action='/signin/code/verify'] #code");
    await check(t, page, "code-enter");
  });
  await t.test("verify, a bad link", (t) => visit(t, page, "verify-failed", "/verify", "main h1"));
  await t.test("verify, in another browser", (t) =>
    visit(t, page, "verify-needs-code", "/verify?userId=someone&secret=abc123", "form[action='/signin/code']"),
  );
  await t.test("recover", (t) => visit(t, page, "recover", "/recover", "form[action='/recover']"));
  await t.test("recover, link sent", async (t) => {
    await page.goto(`${stack.web}/recover`);
    await page.fill("#email", stack.customer.email);
    await page.click("form[action='/recover'] button[type=submit]");
    await page.waitForSelector("p.notice");
    await check(t, page, "recover-sent");
  });
  await t.test("recover, confirm", async (t) => {
    const link = await mail(stack, stack.customer.email, "recovery");
    const url = new URL(link.data.url);
    url.searchParams.set("userId", link.data.userId);
    url.searchParams.set("secret", link.data.secret);
    await visit(t, page, "recover-confirm", `/recover/confirm${url.search}`, "form[action='/recover/confirm']");
  });
  await t.test("404", (t) => visit(t, page, "not-found", "/no-such-page", "main h1"));
  await t.test("results, public", (t) => visit(t, page, "results", "/results", "#results"));
  await t.test("outcome rules", (t) => visit(t, page, "rules", "/rules", "#rules h2"));
  await page.context().close();
});

test("a new customer: paywall and account unpaid, then Basic on a VIP channel, then Discord", async (t) => {
  const page = await person();
  const email = `pages-${randomBytes(4).toString("hex")}@example.com`;
  await signUp(page, stack, email, PASSWORD, (p) => check(t, p, "signup-code"));
  await t.test("paywall, no plan", (t) => visit(t, page, "paywall", "/feed", "#paywall"));
  await t.test("account, no plan, Discord not linked", (t) => visit(t, page, "account-unlinked", "/account", "#discord"));
  await t.test("paywall, a Basic plan asking for VIP calls", async (t) => {
    const bought = await purchase(stack, email, { variant: 9002 });
    assert.ok(bought.ok, `the Basic purchase: ${bought.status} ${await bought.text()}`);
    await until("the Basic plan on the feed", async () => {
      await page.goto(`${stack.web}/feed`);
      return (await page.locator("#feed").count()) > 0;
    });
    await visit(t, page, "paywall-locked", "/feed?route=vip-calls", "#locked");
  });
  await t.test("account, Discord just linked through the sandbox", async (t) => {
    await page.goto(`${stack.web}/account`);
    await Promise.all([page.waitForURL(/\/oauth2\/authorize/), page.click("form[action='/account/discord/link'] button[type=submit]")]);
    await page.fill("#username", `pages_${randomBytes(3).toString("hex")}`);
    await Promise.all([page.waitForURL(/\/account/), page.click("button[value=allow]")]);
    await page.waitForSelector("#discord strong");
    await check(t, page, "account-just-linked");
  });
  await t.test("Discord link problem", (t) =>
    visit(t, page, "discord-link-problem", "/account/discord/callback?state=stale&code=nothing", "main [role=alert]"),
  );
  await page.context().close();
});

test("the demo VIP customer: feed views, filters, account, signed-in pages", async (t) => {
  const page = await person();
  await signIn(page, stack, stack.customer);
  await t.test("feed, cards", (t) => visit(t, page, "feed", "/feed?view=cards", "#feed.cards article.card"));
  await t.test("feed, list", (t) => visit(t, page, "feed-list", "/feed?view=list", "#feed.list article.card"));
  await t.test("feed, filtered", (t) =>
    visit(t, page, "feed-filtered", "/feed?view=cards&route=vip-calls&pair=btc&side=long", "#feed article.card"),
  );
  await t.test("feed, filtered list", (t) =>
    visit(t, page, "feed-filtered-list", "/feed?view=list&route=scalps&side=long", "#feed article.card"),
  );
  await t.test("feed, nothing matches", (t) => visit(t, page, "feed-no-match", "/feed?view=cards&pair=zzzqqq", "#feed .empty"));
  await t.test("performance", (t) => visit(t, page, "performance", "/performance", "#performance"));
  await t.test("performance, all time", (t) => visit(t, page, "performance-all", "/performance?window=all", "#performance"));
  await t.test("account, Discord linked", (t) => visit(t, page, "account-linked", "/account", "#discord strong"));
  await t.test("landing, signed in", (t) => visit(t, page, "landing-signed-in", "/", "main"));
  await t.test("404, signed in", async (t) => {
    await visit(t, page, "not-found-signed-in", "/no-such-page", "main h1");
    assert.equal(await page.locator("a[href='/signin']").count(), 0, "no Sign in link for a signed-in reader");
  });
  await page.context().close();
});

test("staff: admin home, search, customer, failures", async (t) => {
  // A delivery the webhook cannot apply (unknown product): recorded for the failures pages.
  const failedFor = `a-rather-long-address-for-the-failures-table-${randomBytes(2).toString("hex")}@example-company.com`;
  const failed = await purchase(stack, failedFor, { product: 4242, variant: 1 });
  const answer = await failed.json();
  assert.equal(answer.status, "failed", `an unknown product is recorded as a failure: ${JSON.stringify(answer)}`);
  const page = await person();
  await signIn(page, stack, stack.staff);
  await t.test("admin home", async (t) => {
    await visit(t, page, "admin", "/admin", "form[role=search]");
    assert.ok(await page.isVisible("header nav a[href='/admin']"), "an Admin link in the nav for staff");
  });
  await t.test("admin search", (t) => visit(t, page, "admin-search", `/admin?q=${encodeURIComponent("customer")}`, "form[role=search]"));
  await t.test("admin customer", (t) =>
    visit(t, page, "admin-customer", `/admin/customers/${encodeURIComponent(stack.customer.email)}`, "main h1"),
  );
  await t.test("admin failures", (t) => visit(t, page, "admin-failures", "/admin/failures", `main a[href*="${failedFor.slice(0, 20)}"]`));
  await t.test("account, staff", (t) => visit(t, page, "account-staff", "/account", "#discord"));
  await page.context().close();
});

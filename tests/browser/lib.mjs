// Shared helpers of the browser tests: free ports, bounded waits, devstack on loopback with its
// output kept out of the terminal, headless Chromium, the emulator's mailbox, signed Sell.app
// purchases, sign-in and sign-up in the browser, and the page checks (axe-core, phone overflow).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/// CI keeps this folder as an artifact (artifacts/ is ignored by git).
export const SHOTS = join(ROOT, "artifacts", "browser");
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
/// Every wait on a condition is bounded by this.
export const WAIT_MS = 15_000;

/** Chromium's flags: headless, no sandbox (containers), and nothing that phones home. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Headless Chromium (Debian's) as a browser that hands out isolated contexts. */
export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A free loopback port (the OS picks it; released for devstack to take). */
export function freePort() {
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
export async function until(what, check, ms = WAIT_MS) {
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

/** Builds devstack unless DEVSTACK_BIN names a binary; returns the binary. */
function devstackBinary() {
  if (process.env.DEVSTACK_BIN) return process.env.DEVSTACK_BIN;
  const built = spawnSync("cargo", ["build", "--locked", "-q", "-p", "devstack"], { cwd: ROOT, stdio: "inherit" });
  assert.equal(built.status, 0, "cargo build -p devstack");
  return join(ROOT, "target", "debug", "devstack");
}

/**
 * devstack on free ports with a scratch data directory and the Discord sandbox (any DISCORD_*
 * variable of the environment is dropped, so nothing reaches real Discord); resolves once its
 * banner is printed. Its output goes to artifacts/browser/<label>-devstack.log, never the
 * terminal. `stop()` (async) ends it and removes the data; it also ends with this process.
 */
export async function startDevstack(label = "devstack") {
  const bin = devstackBinary();
  mkdirSync(SHOTS, { recursive: true });
  const logPath = join(SHOTS, `${label}-devstack.log`);
  const log = createWriteStream(logPath);
  const data = mkdtempSync(join(tmpdir(), "g3-browser-"));
  const [e, w, b] = [await freePort(), await freePort(), await freePort()];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DISCORD_")));
  const child = spawn(bin, [], {
    cwd: ROOT,
    env: {
      ...env,
      DEVSTACK_DATA_DIR: data,
      DEVSTACK_EMULATOR_ADDR: `127.0.0.1:${e}`,
      DEVSTACK_WEBHOOK_ADDR: `127.0.0.1:${w}`,
      DEVSTACK_WEB_ADDR: `127.0.0.1:${b}`,
      DEVSTACK_SANDBOX_ADDR: "127.0.0.1:0",
      DEVSTACK_DEMO_INTERVAL_SECS: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (d) => {
    if (out.length < 1_000_000) out += d;
    log.write(d);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exited = false;
  const exit = new Promise((ok) =>
    child.once("exit", () => {
      exited = true;
      ok();
    }),
  );
  const killOnExit = () => {
    if (!exited) child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const stop = async () => {
    if (!exited) {
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exit;
      clearTimeout(timer);
    }
    process.removeListener("exit", killOnExit);
    log.end();
    rmSync(data, { recursive: true, force: true });
  };
  try {
    await until("devstack's banner", () => {
      if (exited) throw new Error(`devstack exited early (log: ${logPath}):\n${out.slice(-4000)}`);
      return out.includes("Press Ctrl-C");
    }, 120_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const pick = (re, what) => {
    const m = out.match(re);
    assert.ok(m, `${what} in the banner:\n${out}`);
    return m[1];
  };
  const account = (role) => {
    const m = out.match(new RegExp(`^\\s+${role}\\s+(\\S+@\\S+) / (\\S+)`, "m"));
    assert.ok(m, `the demo ${role} in the banner:\n${out}`);
    return { email: m[1], password: m[2] };
  };
  return {
    stop,
    logPath,
    /** devstack's output so far (for failure messages). */
    output: () => out,
    web: pick(/Web dashboard\s+(http:\/\/\S+)/, "web URL"),
    emulator: `http://127.0.0.1:${e}`,
    project: pick(/Appwrite emulator\s+\S+\s+\(project (\S+),/, "project"),
    apiKey: pick(/Appwrite emulator\s+\S+\s+\(project \S+, API key ([^)\s]+)\)/, "server key"),
    webhook: pick(/Sell\.app webhook\s+(http:\/\/\S+)/, "webhook URL"),
    sellappSecret: pick(/Sell\.app webhook\s+\S+\s+\(secret ([^,]+),/, "Sell.app secret"),
    /** The seeded paying customer (linked to the sandbox's Discord account) and staff member. */
    customer: account("customer"),
    staff: account("staff"),
  };
}

/** A server-key Appwrite REST call, as the pipeline would make it. */
export async function appwrite(stack, method, path, body) {
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

/** Waits for the emulator's mailbox to hold a message of `kind` to `email` (the newest). */
export function mail(stack, email, kind) {
  return until(`a ${kind} mail to ${email}`, async () => {
    const r = await fetch(`${stack.emulator}/mailbox/api/messages?to=${encodeURIComponent(email)}`);
    const { messages } = await r.json();
    // Newest first.
    return messages.find((m) => m.kind === kind);
  });
}

/**
 * Sell.app tells the webhook about a completed order (signed like Sell.app signs). Devstack's
 * plans: product 3301 variant 9001 is VIP, product 3301 otherwise Basic. Returns the response.
 */
export async function purchase(stack, email, { product = 3301, variant = 9001 } = {}) {
  const body = JSON.stringify({
    event: "order.completed",
    store: 1,
    data: {
      id: 700000 + Math.floor(Math.random() * 100000),
      status: "COMPLETED",
      customer: { email },
      line_items: [{ id: 1, product_id: product, product_variant_id: variant, quantity: 1 }],
    },
  });
  const signature = createHmac("sha256", stack.sellappSecret).update(body).digest("hex");
  return fetch(stack.webhook, {
    method: "POST",
    headers: { "content-type": "application/json", signature },
    body,
  });
}

/** Signs in with email and password on /signin; resolves on the feed (or paywall). */
export async function signIn(page, stack, { email, password }) {
  await page.goto(`${stack.web}/signin`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(/\/feed/), page.click("form[action='/signin'] button[type=submit]")]);
}

/**
 * Signs up on /signup and enters the emailed code. `onCodePage(page)` runs on the code page
 * before the code is entered (a screenshot, a check). Resolves on /feed.
 */
export async function signUp(page, stack, email, password, onCodePage = async () => {}) {
  await page.goto(`${stack.web}/signup`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("form[action='/signup'] button[type=submit]");
  // The same code page whether or not the email has an account.
  await page.waitForSelector("form[action='/signin/code/verify'] #code");
  await onCodePage(page);
  const code = await mail(stack, email, "email_otp");
  await page.fill("#code", code.data.secret);
  await Promise.all([page.waitForURL(/\/feed/), page.click("form[action='/signin/code/verify'] button[type=submit]")]);
}

// --- page checks ---------------------------------------------------------------------------------

/** The sizes every page is checked at. */
export const SIZES = [
  { name: "desktop", width: 1366, height: 900 },
  { name: "phone", width: 390, height: 844 },
];

/** How many offending elements a failure names per axe rule (BROWSER_AXE_NODES to see more). */
const SHOWN = Number(process.env.BROWSER_AXE_NODES) || 8;

/** axe-core's source, loaded when first needed. */
let axeSource;
function axeCoreSource() {
  axeSource ??= createRequire(import.meta.url)("axe-core").source;
  return axeSource;
}

/**
 * Runs axe-core in the page (evaluated over the DevTools protocol, so the page's CSP does not
 * block it). Returns the violations of impact "serious" or "critical" as readable lines, and
 * the rule ids of the milder ones.
 */
export async function axeProblems(page, { rules } = {}) {
  const source = axeCoreSource();
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(source);
  const options = { resultTypes: ["violations"], ...(rules ? { runOnly: { type: "rule", values: rules } } : {}) };
  const violations = await page.evaluate((options) =>
    window.axe.run(document, options).then((r) =>
      r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary })),
      })),
    ),
  options);
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const lines = serious.map((v) => {
    const nodes = v.nodes.slice(0, SHOWN).map((n) => `      ${n.target}${n.summary ? `\n        ${n.summary.split("\n").slice(1, 2).join("").trim()}` : ""}`);
    const more = v.nodes.length > SHOWN ? `\n      … and ${v.nodes.length - SHOWN} more` : "";
    return `axe ${v.id} (${v.impact}): ${v.help}\n${nodes.join("\n")}${more}`;
  });
  const mild = violations.filter((v) => !serious.includes(v)).map((v) => `${v.id} (${v.impact})`);
  return { lines, mild };
}

/**
 * What sticks out of the viewport sideways, measured in the page. The layout viewport is
 * `documentElement.clientWidth` (the width without a vertical scrollbar). Counted: the document
 * scrolling sideways, and any rendered element or run of text whose box reaches past the right
 * edge, or past the left edge while still partly on screen. Not counted: what an ancestor clips
 * or scrolls (overflow other than visible, or `clip`, on an ancestor below <body>; that ancestor
 * is measured itself), and boxes wholly left of the screen (the off-screen "skip" link pattern).
 * Only the outermost offender of a subtree is named, with how many inside it also overflow.
 */
export function overflowProblems(page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const SLACK = 1; // sub-pixel rounding
    const root = document.documentElement;
    const body = document.body;
    const clipping = (el) => {
      const s = getComputedStyle(el);
      return s.overflowX !== "visible" || (s.clip && s.clip !== "auto") || (s.clipPath && s.clipPath !== "none");
    };
    /** The element's nearest ancestor (or itself, for text) that clips it, below <body>. */
    const clippedFrom = (el) => {
      for (let a = el; a && a !== body && a !== root; a = a.parentElement) if (clipping(a)) return a;
      return null;
    };
    const outside = (left, right) => right > vw + SLACK || (left < -SLACK && right > 0);
    const offenders = new Map(); // element -> {left, right}
    const sx = window.scrollX;
    for (const el of body.querySelectorAll("*")) {
      if (el.getClientRects().length === 0) continue; // not rendered (display: none / contents)
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      const [left, right] = [r.left + sx, r.right + sx];
      if (!outside(left, right)) continue;
      if (el.parentElement && clippedFrom(el.parentElement)) continue;
      offenders.set(el, { left, right });
    }
    const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const parent = n.parentElement;
      if (!parent || !n.textContent.trim() || offenders.has(parent)) continue;
      if (getComputedStyle(parent).visibility === "hidden") continue;
      range.selectNodeContents(n);
      for (const r of range.getClientRects()) {
        const [left, right] = [r.left + sx, r.right + sx];
        if (r.width === 0 || !outside(left, right) || clippedFrom(parent)) continue;
        const seen = offenders.get(parent);
        offenders.set(parent, { left: Math.min(left, seen?.left ?? left), right: Math.max(right, seen?.right ?? right), text: true });
      }
    }
    const describe = (el) => {
      const cls = typeof el.className === "string" && el.className.trim() ? `.${el.className.trim().split(/\s+/).join(".")}` : "";
      const id = el.id ? `#${el.id}` : "";
      const text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 40);
      return `<${el.localName}${id}${cls}>${text ? ` "${text}"` : ""}`;
    };
    const all = [...offenders.keys()];
    const outermost = all.filter((el) => !all.some((o) => o !== el && o.contains(el)));
    const lines = outermost.map((el) => {
      const { left, right, text } = offenders.get(el);
      const inside = all.filter((o) => o !== el && el.contains(o)).length;
      return `${describe(el)} spans ${Math.round(left)}..${Math.round(right)} px${text ? " (its text)" : ""}${inside ? `, ${inside} more inside` : ""}`;
    });
    const scrollWidth = root.scrollWidth;
    if (scrollWidth > vw + SLACK) lines.unshift(`the document is ${scrollWidth} px wide in a ${vw} px viewport`);
    return lines;
  });
}

/** Two animation frames: layout and paint caught up with a resize. */
export function settle(page) {
  return page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// Shared plumbing for the conformance tests: start the emulator binary, build node-appwrite
// clients against it, read its mailbox, and assert Appwrite errors.
//
// These tests hold the emulator to Appwrite's official Node SDK (node-appwrite 21.1.0, built for
// Appwrite 1.8.x). Nothing here knows how the emulator is written.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';

import { Client, AppwriteException } from 'node-appwrite';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');

/** Starts one emulator (in memory) and resolves once it prints its address. */
export async function startEmulator() {
  const bin = process.env.EMULATOR_BIN
    ? path.resolve(repoRoot, process.env.EMULATOR_BIN)
    : path.join(repoRoot, 'target/debug/appwrite-emulator');
  const project = 'conformance';
  const key = 'key-' + randomBytes(16).toString('hex');
  const child = spawn(bin, ['--bind', '127.0.0.1:0', '--project', project, '--key', key], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const origin = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`emulator did not print its address within 60s; stderr:\n${stderr}`));
    }, 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${err.message} (build it with cargo build -p appwrite-emulator --bin appwrite-emulator)`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`emulator exited early with ${code}; stderr:\n${stderr}`));
    });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const m = /appwrite emulator listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  child.removeAllListeners('exit');
  // Never leave an emulator behind, even if the test process dies early.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const emu = {
    origin,
    endpoint: `${origin}/v1`,
    project,
    key,
    child,
    /** A client holding the server key. */
    keyClient() {
      return new Client().setEndpoint(emu.endpoint).setProject(project).setKey(key);
    },
    /** A client acting as the user whose session secret this is. */
    sessionClient(secret) {
      return new Client().setEndpoint(emu.endpoint).setProject(project).setSession(secret);
    },
    /** A client with a project and nothing else. */
    guestClient() {
      return new Client().setEndpoint(emu.endpoint).setProject(project);
    },
    /** Every message the mailbox holds for `to`. */
    async mailbox(to) {
      const res = await fetch(`${origin}/mailbox/api/messages?to=${encodeURIComponent(to)}`);
      assert.equal(res.status, 200, `mailbox answered ${res.status}`);
      const body = await res.json();
      const list = Array.isArray(body) ? body : (body.messages ?? body.items ?? []);
      assert.ok(Array.isArray(list), `mailbox JSON has no message list: ${JSON.stringify(body)}`);
      return list;
    },
    /** Runs `action`, then waits (bounded) for a new mail to `to` and returns it. */
    async expectMail(to, action) {
      const before = new Set((await emu.mailbox(to)).map((m) => JSON.stringify(m)));
      const result = await action();
      const mail = await poll(async () => {
        const now = await emu.mailbox(to);
        return now.find((m) => !before.has(JSON.stringify(m)));
      }, `a new mail to ${to}`);
      return { mail, result };
    },
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return emu;
}

/** Polls `fn` until it returns a truthy value, for at most `timeoutMs`. */
export async function poll(fn, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Awaits `promise` and asserts it rejected with an AppwriteException of this HTTP code and type,
 * and that the raw body is Appwrite's error shape `{message, code, type, version}`.
 */
export async function expectError(promise, code, type) {
  let caught;
  try {
    const value = await promise;
    assert.fail(`expected ${code} ${type}, but the call succeeded with ${JSON.stringify(value)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    caught = err;
  }
  assert.ok(caught instanceof AppwriteException, `expected AppwriteException, got ${caught}`);
  assert.deepEqual(
    { code: caught.code, type: caught.type },
    { code, type },
    `wrong error (message: ${caught.message}; body: ${caught.response})`,
  );
  let body;
  try {
    body = JSON.parse(caught.response);
  } catch {
    assert.fail(`error body is not JSON: ${caught.response}`);
  }
  assert.equal(typeof body.message, 'string', 'error.message');
  assert.equal(body.code, code, 'error.code equals the HTTP status');
  assert.equal(body.type, type, 'error.type');
  assert.equal(typeof body.version, 'string', 'error.version');
  return caught;
}

/** Appwrite's date format: ISO 8601 with milliseconds and an offset. */
export function assertAppwriteDate(value, what) {
  assert.equal(typeof value, 'string', `${what} is a string`);
  assert.match(value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/, `${what} is an Appwrite date`);
}

/** The system fields every 1.8 document carries. */
export function assertDocumentShape(doc, databaseId, collectionId) {
  assert.equal(typeof doc.$id, 'string', '$id');
  assert.equal(typeof doc.$sequence, 'number', '$sequence is a number in 1.8');
  assert.ok(Number.isInteger(doc.$sequence), '$sequence is an integer');
  assert.equal(doc.$collectionId, collectionId, '$collectionId');
  assert.equal(doc.$databaseId, databaseId, '$databaseId');
  assertAppwriteDate(doc.$createdAt, '$createdAt');
  assertAppwriteDate(doc.$updatedAt, '$updatedAt');
  assert.ok(Array.isArray(doc.$permissions), '$permissions is an array');
}

/** A unique-enough suffix for ids and emails within one emulator. */
let counter = 0;
export function uniq(prefix) {
  counter += 1;
  return `${prefix}${counter}${randomBytes(3).toString('hex')}`;
}

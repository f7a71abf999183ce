// Users (server key) and the auth-header errors, through node-appwrite 21.1.0 (Appwrite 1.8.x).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Client, Users, Teams, Account, Databases, Query, ID } from 'node-appwrite';

import { startEmulator, expectError, assertAppwriteDate, uniq } from './helpers.mjs';

let emu;
let users;

before(async () => {
  emu = await startEmulator();
  users = new Users(emu.keyClient());
});

after(async () => {
  await emu?.stop();
});

test('users.create returns the user model; email is lower-cased', async () => {
  const u = await users.create({ userId: 'alice', email: 'Alice@Example.COM', password: 'correct-horse-1', name: 'Alice' });
  assert.equal(u.$id, 'alice');
  assert.equal(u.email, 'alice@example.com');
  assert.equal(u.name, 'Alice');
  assert.equal(u.status, true);
  assert.equal(u.emailVerification, false);
  assert.equal(u.phoneVerification, false);
  assert.equal(u.phone, '');
  assert.equal(u.mfa, false);
  assert.deepEqual(u.labels, []);
  assert.deepEqual(u.prefs, {});
  assert.ok(Array.isArray(u.targets), 'targets is an array');
  assertAppwriteDate(u.$createdAt, '$createdAt');
  assertAppwriteDate(u.registration, 'registration');
  assertAppwriteDate(u.passwordUpdate, 'passwordUpdate (a password was set)');
  assert.equal(typeof u.accessedAt, 'string');
});

test('users.create with ID.unique() and without a password', async () => {
  const u = await users.create({ userId: ID.unique(), email: 'nopass@example.com' });
  assert.match(u.$id, /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,35}$/);
  assert.notEqual(u.$id, 'unique()');
  assert.equal(u.passwordUpdate, '', 'no password: passwordUpdate is empty');
  assert.equal(u.name, '');
});

test('users.create conflicts are 409 user_already_exists (same id, same email in any case)', async () => {
  await expectError(users.create({ userId: 'alice', email: 'other@example.com' }), 409, 'user_already_exists');
  await expectError(users.create({ userId: 'alice2', email: 'ALICE@example.com' }), 409, 'user_already_exists');
  await expectError(users.get({ userId: 'alice2' }), 404, 'user_not_found');
  assert.equal((await users.get({ userId: 'alice' })).email, 'alice@example.com');
});

test('users.create with bad input is 400 general_argument_invalid and creates nothing', async () => {
  const before = (await users.list()).total;
  await expectError(users.create({ userId: '_bad', email: 'bad1@example.com' }), 400, 'general_argument_invalid');
  await expectError(users.create({ userId: 'x'.repeat(37), email: 'bad2@example.com' }), 400, 'general_argument_invalid');
  await expectError(users.create({ userId: 'bad3', email: 'not-an-email' }), 400, 'general_argument_invalid');
  await expectError(users.create({ userId: 'bad4', email: 'bad4@example.com', password: 'short' }), 400, 'general_argument_invalid');
  assert.equal((await users.list()).total, before, 'no user was created');
});

test('users.get and 404 user_not_found', async () => {
  const u = await users.get({ userId: 'alice' });
  assert.equal(u.$id, 'alice');
  assert.equal(u.email, 'alice@example.com');
  await expectError(users.get({ userId: 'nobody' }), 404, 'user_not_found');
});

test('users.list with Query.equal(email), limit and cursor', async () => {
  const found = await users.list({ queries: [Query.equal('email', 'alice@example.com')] });
  assert.equal(found.total, 1);
  assert.equal(found.users.length, 1);
  assert.equal(found.users[0].$id, 'alice');
  const none = await users.list({ queries: [Query.equal('email', 'nobody@example.com')] });
  assert.deepEqual(none, { total: 0, users: [] });

  await users.create({ userId: 'bob', email: 'bob@example.com', name: 'Bob' });
  const all = await users.list();
  assert.equal(all.total, 3);
  const page = await users.list({ queries: [Query.limit(1)] });
  assert.equal(page.users.length, 1);
  assert.equal(page.total, 3, 'total ignores limit');
  const next = await users.list({ queries: [Query.cursorAfter(page.users[0].$id), Query.limit(100)] });
  assert.equal(next.users.length, 2);
  assert.ok(!next.users.some((u) => u.$id === page.users[0].$id));
  await expectError(users.list({ queries: [Query.equal('nope', 'x')] }), 400, 'general_query_invalid');
});

test('users.updatePrefs replaces prefs; getPrefs reads them', async () => {
  const prefs = await users.updatePrefs({ userId: 'alice', prefs: { theme: 'dark', n: 2 } });
  assert.deepEqual(prefs, { theme: 'dark', n: 2 });
  assert.deepEqual(await users.getPrefs({ userId: 'alice' }), { theme: 'dark', n: 2 });
  await users.updatePrefs({ userId: 'alice', prefs: { lang: 'en' } });
  assert.deepEqual(await users.getPrefs({ userId: 'alice' }), { lang: 'en' }, 'prefs are replaced, not merged');
  assert.deepEqual((await users.get({ userId: 'alice' })).prefs, { lang: 'en' });
  await expectError(users.getPrefs({ userId: 'nobody' }), 404, 'user_not_found');
});

test('users.updateLabels sets labels; invalid labels are 400 and change nothing', async () => {
  const u = await users.updateLabels({ userId: 'alice', labels: ['admin', 'vip'] });
  assert.deepEqual(u.labels, ['admin', 'vip']);
  assert.deepEqual((await users.get({ userId: 'alice' })).labels, ['admin', 'vip']);
  await expectError(users.updateLabels({ userId: 'alice', labels: ['not valid!'] }), 400, 'general_argument_invalid');
  assert.deepEqual((await users.get({ userId: 'alice' })).labels, ['admin', 'vip']);
  const cleared = await users.updateLabels({ userId: 'bob', labels: [] });
  assert.deepEqual(cleared.labels, []);
});

test('users.updateEmailVerification toggles emailVerification', async () => {
  const u = await users.updateEmailVerification({ userId: 'alice', emailVerification: true });
  assert.equal(u.emailVerification, true);
  assert.equal((await users.get({ userId: 'alice' })).emailVerification, true);
  const back = await users.updateEmailVerification({ userId: 'alice', emailVerification: false });
  assert.equal(back.emailVerification, false);
  await expectError(users.updateEmailVerification({ userId: 'nobody', emailVerification: true }), 404, 'user_not_found');
});

test('users.listMemberships lists the teams a user joined', async () => {
  const teams = new Teams(emu.keyClient());
  await teams.create({ teamId: 'paid', name: 'Paid' });
  const empty = await users.listMemberships({ userId: 'bob' });
  assert.deepEqual(empty, { total: 0, memberships: [] });
  await teams.createMembership({ teamId: 'paid', roles: [], userId: 'bob' });
  const list = await users.listMemberships({ userId: 'bob' });
  assert.equal(list.total, 1);
  assert.equal(list.memberships[0].teamId, 'paid');
  assert.equal(list.memberships[0].userId, 'bob');
  assert.equal(list.memberships[0].confirm, true);
  await expectError(users.listMemberships({ userId: 'nobody' }), 404, 'user_not_found');
});

test('users.delete removes the user; a second delete is 404', async () => {
  await users.create({ userId: 'carol', email: 'carol@example.com' });
  await users.delete({ userId: 'carol' });
  await expectError(users.get({ userId: 'carol' }), 404, 'user_not_found');
  await expectError(users.delete({ userId: 'carol' }), 404, 'user_not_found');
  const again = await users.create({ userId: 'carol', email: 'carol@example.com' });
  assert.equal(again.$id, 'carol', 'the id and email are free again');
});

// ---- auth headers ----

test('a guest (no key, no session) on /users is 401 general_unauthorized_scope', async () => {
  await expectError(new Users(emu.guestClient()).list(), 401, 'general_unauthorized_scope');
  await expectError(new Users(emu.guestClient()).get({ userId: 'alice' }), 401, 'general_unauthorized_scope');
  await expectError(new Databases(emu.guestClient()).create({ databaseId: 'x', name: 'x' }), 401, 'general_unauthorized_scope');
});

test('a signed-in user on /users is 401 general_unauthorized_scope', async () => {
  const session = await new Account(emu.keyClient()).createEmailPasswordSession({ email: 'alice@example.com', password: 'correct-horse-1' });
  await expectError(new Users(emu.sessionClient(session.secret)).list(), 401, 'general_unauthorized_scope');
});

test('key and session in one request is 403 user_key_and_session_set', async () => {
  const session = await new Account(emu.keyClient()).createEmailPasswordSession({ email: 'alice@example.com', password: 'correct-horse-1' });
  const both = emu.keyClient().setSession(session.secret);
  await expectError(new Users(both).list(), 403, 'user_key_and_session_set');
  await expectError(new Account(both).get(), 403, 'user_key_and_session_set');
});

test('an unknown project is 404 project_not_found', async () => {
  const client = new Client().setEndpoint(emu.endpoint).setProject('no-such-project').setKey(emu.key);
  await expectError(new Users(client).list(), 404, 'project_not_found');
});

test('a wrong API key is refused (401)', async () => {
  const client = new Client().setEndpoint(emu.endpoint).setProject(emu.project).setKey('wrong-key');
  await expectError(new Users(client).list(), 401, 'user_unauthorized');
});

test('emails are stored lower-case and found by their lower-case form', async () => {
  const email = `${uniq('MiXeD')}@Example.Org`;
  const u = await users.create({ userId: ID.unique(), email });
  assert.equal(u.email, email.toLowerCase());
  const found = await users.list({ queries: [Query.equal('email', email.toLowerCase())] });
  assert.deepEqual(found.users.map((x) => x.$id), [u.$id]);
});

// Account with server-side sessions, email verification and email one-time codes, through
// node-appwrite 21.1.0 (Appwrite 1.8.x). Mail is read from the emulator's mailbox.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Users, Account, ID } from 'node-appwrite';

import { startEmulator, expectError, assertAppwriteDate } from './helpers.mjs';

let emu;
let users;
let keyAccount;
const EMAIL = 'dana@example.com';
const PASSWORD = 'correct-horse-1';

before(async () => {
  emu = await startEmulator();
  users = new Users(emu.keyClient());
  keyAccount = new Account(emu.keyClient());
  await users.create({ userId: 'dana', email: EMAIL, password: PASSWORD, name: 'Dana' });
});

after(async () => {
  await emu?.stop();
});

function assertSession(s, userId) {
  assert.equal(typeof s.$id, 'string');
  assert.equal(s.userId, userId);
  assertAppwriteDate(s.$createdAt, '$createdAt');
  assertAppwriteDate(s.expire, 'expire');
  assert.ok(Date.parse(s.expire) > Date.now(), 'expire is in the future');
  assert.equal(typeof s.secret, 'string');
  assert.ok(s.secret.length > 0, 'a session created with the server key carries its secret');
  assert.ok(Array.isArray(s.factors), 'factors is an array');
  assert.equal(typeof s.current, 'boolean');
  for (const k of ['provider', 'providerUid', 'ip', 'osCode', 'clientName', 'countryCode', 'mfaUpdatedAt']) {
    assert.equal(typeof s[k], 'string', `session.${k} is a string`);
  }
}

test('createEmailPasswordSession with the key returns a session with its secret', async () => {
  const s = await keyAccount.createEmailPasswordSession({ email: EMAIL, password: PASSWORD });
  assertSession(s, 'dana');
  assert.equal(s.provider, 'email');
  assert.equal(s.providerUid, EMAIL);
  assert.deepEqual(s.factors, ['password']);
});

test('a session created without the key does not reveal its secret', async () => {
  const s = await new Account(emu.guestClient()).createEmailPasswordSession({ email: EMAIL, password: PASSWORD });
  assert.equal(s.userId, 'dana');
  assert.equal(s.secret, '', 'only the server key (or a privileged user) sees session secrets');
});

test('the email is matched case-insensitively at sign-in', async () => {
  const s = await keyAccount.createEmailPasswordSession({ email: 'DANA@Example.com', password: PASSWORD });
  assert.equal(s.userId, 'dana');
});

test('wrong password or unknown email is 401 user_invalid_credentials', async () => {
  await expectError(keyAccount.createEmailPasswordSession({ email: EMAIL, password: 'wrong-password' }), 401, 'user_invalid_credentials');
  await expectError(keyAccount.createEmailPasswordSession({ email: 'ghost@example.com', password: PASSWORD }), 401, 'user_invalid_credentials');
});

test('a session client reads its own account with account.get()', async () => {
  const s = await keyAccount.createEmailPasswordSession({ email: EMAIL, password: PASSWORD });
  const me = await new Account(emu.sessionClient(s.secret)).get();
  assert.equal(me.$id, 'dana');
  assert.equal(me.email, EMAIL);
  assert.equal(me.name, 'Dana');
  assert.equal(me.emailVerification, false);
  assert.deepEqual(me.prefs, {});
  assert.equal('password' in me && me.password !== undefined && me.password !== null && me.password !== '', false, 'the password hash is not shown to the user');
});

test('a guest or a bad session on account.get() is 401 general_unauthorized_scope', async () => {
  await expectError(new Account(emu.guestClient()).get(), 401, 'general_unauthorized_scope');
  await expectError(new Account(emu.sessionClient('not-a-real-secret')).get(), 401, 'general_unauthorized_scope');
});

test('email verification: createVerification mails userId+secret, updateVerification verifies', async () => {
  const s = await keyAccount.createEmailPasswordSession({ email: EMAIL, password: PASSWORD });
  const account = new Account(emu.sessionClient(s.secret));
  const { mail, result: token } = await emu.expectMail(EMAIL, () => account.createVerification({ url: 'http://localhost:3000/verify' }));
  assert.equal(token.userId, 'dana');
  assertAppwriteDate(token.expire, 'token.expire');
  assert.equal(typeof token.$id, 'string');
  assert.equal(typeof token.phrase, 'string');
  assert.equal(mail.data?.userId, 'dana', `mail data: ${JSON.stringify(mail)}`);
  assert.equal(typeof mail.data?.secret, 'string');

  await expectError(account.updateVerification({ userId: 'dana', secret: 'wrong' }), 401, 'user_invalid_token');
  assert.equal((await account.get()).emailVerification, false, 'a wrong secret verifies nothing');

  const done = await account.updateVerification({ userId: 'dana', secret: mail.data.secret });
  assert.equal(done.userId, 'dana');
  assert.equal((await account.get()).emailVerification, true);
  assert.equal((await users.get({ userId: 'dana' })).emailVerification, true);
});

test('email one-time code: createEmailToken mails a code, createSession exchanges it', async () => {
  const { mail, result: token } = await emu.expectMail(EMAIL, () =>
    keyAccount.createEmailToken({ userId: ID.unique(), email: EMAIL }),
  );
  assert.equal(token.userId, 'dana', 'an existing email keeps its user id');
  assertAppwriteDate(token.expire, 'token.expire');
  assert.equal(mail.data?.userId, 'dana', `mail data: ${JSON.stringify(mail)}`);
  const code = mail.data?.secret;
  assert.match(code, /^\d{6}$/, 'the emailed secret is a 6-digit code');

  await expectError(keyAccount.createSession({ userId: 'dana', secret: '000000' === code ? '111111' : '000000' }), 401, 'user_invalid_token');

  const s = await keyAccount.createSession({ userId: 'dana', secret: code });
  assertSession(s, 'dana');
  const me = await new Account(emu.sessionClient(s.secret)).get();
  assert.equal(me.$id, 'dana');

  await expectError(keyAccount.createSession({ userId: 'dana', secret: code }), 401, 'user_invalid_token');
});

test('createEmailToken for a new email creates the user', async () => {
  const email = 'newcomer@example.com';
  const { mail, result: token } = await emu.expectMail(email, () => keyAccount.createEmailToken({ userId: 'newcomer', email }));
  assert.equal(token.userId, 'newcomer');
  const u = await users.get({ userId: 'newcomer' });
  assert.equal(u.email, email);
  const s = await keyAccount.createSession({ userId: 'newcomer', secret: mail.data.secret });
  assert.equal(s.userId, 'newcomer');
  assert.equal(
    (await users.get({ userId: 'newcomer' })).emailVerification,
    true,
    'signing in with an emailed code verifies the email',
  );
});

test('deleteSession("current") ends the session', async () => {
  const s = await keyAccount.createEmailPasswordSession({ email: EMAIL, password: PASSWORD });
  const account = new Account(emu.sessionClient(s.secret));
  assert.equal((await account.get()).$id, 'dana');
  const res = await account.deleteSession({ sessionId: 'current' });
  assert.ok(typeof res === 'object' || res === '', 'returns an empty body');
  await expectError(account.get(), 401, 'general_unauthorized_scope');
  const other = await keyAccount.createEmailPasswordSession({ email: EMAIL, password: PASSWORD });
  assert.equal((await new Account(emu.sessionClient(other.secret)).get()).$id, 'dana', 'other sessions are unaffected');
});

test('a blocked or deleted user loses their session', async () => {
  await users.create({ userId: 'erin', email: 'erin@example.com', password: PASSWORD });
  const s = await keyAccount.createEmailPasswordSession({ email: 'erin@example.com', password: PASSWORD });
  const account = new Account(emu.sessionClient(s.secret));
  assert.equal((await account.get()).$id, 'erin');
  await users.delete({ userId: 'erin' });
  await expectError(account.get(), 401, 'general_unauthorized_scope');
});

test('account.listSessions marks the current one; account.deleteSessions ends them all', async () => {
  await users.create({ userId: 'gabe', email: 'gabe@example.com', password: PASSWORD });
  const a = await keyAccount.createEmailPasswordSession({ email: 'gabe@example.com', password: PASSWORD });
  const b = await keyAccount.createEmailPasswordSession({ email: 'gabe@example.com', password: PASSWORD });
  const asA = new Account(emu.sessionClient(a.secret));
  const list = await asA.listSessions();
  assert.equal(list.total, 2);
  assert.deepEqual(list.sessions.map((s) => s.$id).sort(), [a.$id, b.$id].sort());
  assert.deepEqual(list.sessions.filter((s) => s.current).map((s) => s.$id), [a.$id], 'only the calling session is current');
  assert.ok(list.sessions.every((s) => s.secret === ''), 'listed sessions do not reveal secrets');
  await asA.deleteSessions();
  await expectError(asA.get(), 401, 'general_unauthorized_scope');
  await expectError(new Account(emu.sessionClient(b.secret)).get(), 401, 'general_unauthorized_scope');
});

test('users.listSessions / users.deleteSession (server key) end one session', async () => {
  const a = await keyAccount.createEmailPasswordSession({ email: EMAIL, password: PASSWORD });
  const list = await users.listSessions({ userId: 'dana' });
  assert.ok(list.total >= 1);
  assert.ok(list.sessions.some((s) => s.$id === a.$id));
  await users.deleteSession({ userId: 'dana', sessionId: a.$id });
  await expectError(new Account(emu.sessionClient(a.secret)).get(), 401, 'general_unauthorized_scope');
  await expectError(users.deleteSession({ userId: 'dana', sessionId: a.$id }), 404, 'user_session_not_found');
});

test('account.updatePassword needs the old password; the new one signs in', async () => {
  await users.create({ userId: 'hugo', email: 'hugo@example.com', password: PASSWORD });
  const s = await keyAccount.createEmailPasswordSession({ email: 'hugo@example.com', password: PASSWORD });
  const account = new Account(emu.sessionClient(s.secret));
  await expectError(account.updatePassword({ password: 'brand-new-pass-1', oldPassword: 'wrong-old-pass' }), 401, 'user_invalid_credentials');
  await expectError(account.updatePassword({ password: 'short', oldPassword: PASSWORD }), 400, 'general_argument_invalid');
  await keyAccount.createEmailPasswordSession({ email: 'hugo@example.com', password: PASSWORD }); // still the old one
  const u = await account.updatePassword({ password: 'brand-new-pass-1', oldPassword: PASSWORD });
  assert.equal(u.$id, 'hugo');
  await expectError(keyAccount.createEmailPasswordSession({ email: 'hugo@example.com', password: PASSWORD }), 401, 'user_invalid_credentials');
  const again = await keyAccount.createEmailPasswordSession({ email: 'hugo@example.com', password: 'brand-new-pass-1' });
  assert.equal(again.userId, 'hugo');
});

test('users.updatePassword (server key) replaces the password', async () => {
  await users.create({ userId: 'ines', email: 'ines@example.com', password: PASSWORD });
  const u = await users.updatePassword({ userId: 'ines', password: 'admin-set-pass-1' });
  assert.equal(u.$id, 'ines');
  await expectError(keyAccount.createEmailPasswordSession({ email: 'ines@example.com', password: PASSWORD }), 401, 'user_invalid_credentials');
  assert.equal((await keyAccount.createEmailPasswordSession({ email: 'ines@example.com', password: 'admin-set-pass-1' })).userId, 'ines');
  await expectError(users.updatePassword({ userId: 'nobody', password: 'admin-set-pass-1' }), 404, 'user_not_found');
});

test('password recovery: createRecovery mails userId+secret, updateRecovery sets the new password', async () => {
  await users.create({ userId: 'jade', email: 'jade@example.com', password: PASSWORD });
  const { mail, result: token } = await emu.expectMail('jade@example.com', () =>
    keyAccount.createRecovery({ email: 'jade@example.com', url: 'http://localhost:3000/reset' }),
  );
  assert.equal(token.userId, 'jade');
  assertAppwriteDate(token.expire, 'token.expire');
  assert.equal(mail.data?.userId, 'jade', `mail data: ${JSON.stringify(mail)}`);
  await expectError(keyAccount.updateRecovery({ userId: 'jade', secret: 'wrong', password: 'recovered-pass-1' }), 401, 'user_invalid_token');
  await keyAccount.updateRecovery({ userId: 'jade', secret: mail.data.secret, password: 'recovered-pass-1' });
  await expectError(keyAccount.createEmailPasswordSession({ email: 'jade@example.com', password: PASSWORD }), 401, 'user_invalid_credentials');
  assert.equal((await keyAccount.createEmailPasswordSession({ email: 'jade@example.com', password: 'recovered-pass-1' })).userId, 'jade');
  await expectError(keyAccount.updateRecovery({ userId: 'jade', secret: mail.data.secret, password: 'again-pass-123' }), 401, 'user_invalid_token');
  await expectError(keyAccount.createRecovery({ email: 'ghost@example.com', url: 'http://localhost:3000/reset' }), 404, 'user_not_found');
});

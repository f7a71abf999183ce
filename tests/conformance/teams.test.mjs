// Teams and memberships (server key), and team-based read permissions seen by a session user,
// through node-appwrite 21.1.0 (Appwrite 1.8.x).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Users, Teams, Account, Databases, Permission, Role, Query } from 'node-appwrite';

import { startEmulator, expectError, poll, assertAppwriteDate } from './helpers.mjs';

let emu;
let teams;
let users;
const PASSWORD = 'correct-horse-1';

before(async () => {
  emu = await startEmulator();
  teams = new Teams(emu.keyClient());
  users = new Users(emu.keyClient());
  await users.create({ userId: 'frank', email: 'frank@example.com', password: PASSWORD, name: 'Frank' });
  await users.create({ userId: 'gina', email: 'gina@example.com', password: PASSWORD, name: 'Gina' });
});

after(async () => {
  await emu?.stop();
});

test('teams.create and teams.get return the team model', async () => {
  const t = await teams.create({ teamId: 'paid', name: 'Paid' });
  assert.equal(t.$id, 'paid');
  assert.equal(t.name, 'Paid');
  assert.equal(t.total, 0, 'a team made with the server key has no members');
  assert.deepEqual(t.prefs, {});
  assertAppwriteDate(t.$createdAt, '$createdAt');
  const got = await teams.get({ teamId: 'paid' });
  assert.equal(got.$id, 'paid');
  assert.equal(got.name, 'Paid');
  await expectError(teams.get({ teamId: 'nope' }), 404, 'team_not_found');
  await expectError(teams.create({ teamId: 'paid', name: 'again' }), 409, 'team_already_exists');
  assert.equal((await teams.get({ teamId: 'paid' })).name, 'Paid');
});

test('createMembership with the key and a userId is confirmed at once', async () => {
  const m = await teams.createMembership({ teamId: 'paid', roles: ['member'], userId: 'frank' });
  assert.equal(m.teamId, 'paid');
  assert.equal(m.teamName, 'Paid');
  assert.equal(m.userId, 'frank');
  assert.equal(m.userName, 'Frank');
  assert.equal(m.userEmail, 'frank@example.com');
  assert.equal(m.confirm, true);
  assert.deepEqual(m.roles, ['member']);
  assertAppwriteDate(m.joined, 'joined');
  assertAppwriteDate(m.invited, 'invited');
  assert.equal(typeof m.mfa, 'boolean');
  assert.equal((await teams.get({ teamId: 'paid' })).total, 1, 'team total counts the member');
});

test('a duplicate membership is 409 and adds nothing', async () => {
  await expectError(teams.createMembership({ teamId: 'paid', roles: [], userId: 'frank' }), 409, 'team_invite_already_exists');
  assert.equal((await teams.listMemberships({ teamId: 'paid' })).total, 1);
  assert.equal((await teams.get({ teamId: 'paid' })).total, 1);
});

test('createMembership errors: unknown team 404 team_not_found, unknown user 404 user_not_found', async () => {
  await expectError(teams.createMembership({ teamId: 'nope', roles: [], userId: 'frank' }), 404, 'team_not_found');
  await expectError(teams.createMembership({ teamId: 'paid', roles: [], userId: 'nobody' }), 404, 'user_not_found');
  assert.equal((await teams.listMemberships({ teamId: 'paid' })).total, 1);
});

test('listMemberships filters with Query.equal(userId)', async () => {
  await teams.createMembership({ teamId: 'paid', roles: [], userId: 'gina' });
  const all = await teams.listMemberships({ teamId: 'paid' });
  assert.equal(all.total, 2);
  const only = await teams.listMemberships({ teamId: 'paid', queries: [Query.equal('userId', 'gina')] });
  assert.equal(only.total, 1);
  assert.equal(only.memberships[0].userId, 'gina');
  const none = await teams.listMemberships({ teamId: 'paid', queries: [Query.equal('userId', 'nobody')] });
  assert.deepEqual(none, { total: 0, memberships: [] });
  await expectError(teams.listMemberships({ teamId: 'nope' }), 404, 'team_not_found');
});

test('deleteMembership removes it; a second delete is 404 membership_not_found', async () => {
  const [m] = (await teams.listMemberships({ teamId: 'paid', queries: [Query.equal('userId', 'gina')] })).memberships;
  await teams.deleteMembership({ teamId: 'paid', membershipId: m.$id });
  assert.equal((await teams.listMemberships({ teamId: 'paid', queries: [Query.equal('userId', 'gina')] })).total, 0);
  assert.equal((await teams.get({ teamId: 'paid' })).total, 1);
  await expectError(teams.deleteMembership({ teamId: 'paid', membershipId: m.$id }), 404, 'membership_not_found');
});

test('a collection readable by team:paid is invisible to a user until they join, then visible, then gone again', async () => {
  const db = new Databases(emu.keyClient());
  await db.create({ databaseId: 'g3', name: 'G3' });
  await db.createCollection({
    databaseId: 'g3',
    collectionId: 'signals',
    name: 'Signals',
    permissions: [Permission.read(Role.team('paid')), Permission.read(Role.team('staff'))],
    documentSecurity: false,
  });
  await db.createStringAttribute({ databaseId: 'g3', collectionId: 'signals', key: 'pair', size: 16, required: true });
  await poll(async () => (await db.getAttribute({ databaseId: 'g3', collectionId: 'signals', key: 'pair' })).status === 'available', 'pair attribute');
  await db.createDocument({ databaseId: 'g3', collectionId: 'signals', documentId: 's1', data: { pair: 'BTCUSDT' } });

  await users.create({ userId: 'hana', email: 'hana@example.com', password: PASSWORD });
  const session = await new Account(emu.keyClient()).createEmailPasswordSession({ email: 'hana@example.com', password: PASSWORD });
  const asHana = new Databases(emu.sessionClient(session.secret));
  const target = { databaseId: 'g3', collectionId: 'signals' };

  await expectError(asHana.listDocuments(target), 401, 'user_unauthorized');
  await expectError(new Databases(emu.guestClient()).listDocuments(target), 401, 'user_unauthorized');

  const m = await teams.createMembership({ teamId: 'paid', roles: [], userId: 'hana' });
  const list = await asHana.listDocuments(target);
  assert.deepEqual(list.documents.map((d) => d.$id), ['s1']);
  assert.equal(list.total, 1);
  assert.equal((await asHana.getDocument({ ...target, documentId: 's1' })).pair, 'BTCUSDT');

  await expectError(
    asHana.createDocument({ ...target, documentId: 's2', data: { pair: 'ETHUSDT' } }),
    401,
    'user_unauthorized',
  );
  await expectError(db.getDocument({ ...target, documentId: 's2' }), 404, 'document_not_found');

  await teams.deleteMembership({ teamId: 'paid', membershipId: m.$id });
  await expectError(asHana.listDocuments(target), 401, 'user_unauthorized');
  hanaSecret = session.secret;
});

let hanaSecret;

test('getDocument in a collection the user cannot read is 404 document_not_found (Appwrite hides it)', async () => {
  assert.ok(hanaSecret, 'needs the previous test');
  const asHana = new Databases(emu.sessionClient(hanaSecret));
  await expectError(asHana.getDocument({ databaseId: 'g3', collectionId: 'signals', documentId: 's1' }), 404, 'document_not_found');
  await expectError(new Databases(emu.guestClient()).getDocument({ databaseId: 'g3', collectionId: 'signals', documentId: 's1' }), 404, 'document_not_found');
});

test('document security: a user sees only documents granted to them or their labels', async () => {
  const db = new Databases(emu.keyClient());
  await db.createCollection({ databaseId: 'g3', collectionId: 'links', name: 'Links', permissions: [], documentSecurity: true });
  await db.createStringAttribute({ databaseId: 'g3', collectionId: 'links', key: 'v', size: 16, required: false });
  await poll(async () => (await db.getAttribute({ databaseId: 'g3', collectionId: 'links', key: 'v' })).status === 'available', 'v attribute');
  const target = { databaseId: 'g3', collectionId: 'links' };
  await db.createDocument({ ...target, documentId: 'mine', data: { v: 'a' }, permissions: [Permission.read(Role.user('frank'))] });
  await db.createDocument({ ...target, documentId: 'theirs', data: { v: 'b' }, permissions: [Permission.read(Role.user('gina'))] });
  await db.createDocument({ ...target, documentId: 'admins', data: { v: 'c' }, permissions: [Permission.read(Role.label('admin'))] });

  const s = await new Account(emu.keyClient()).createEmailPasswordSession({ email: 'frank@example.com', password: PASSWORD });
  const asFrank = new Databases(emu.sessionClient(s.secret));
  const seen = await asFrank.listDocuments(target);
  assert.deepEqual(seen.documents.map((d) => d.$id), ['mine']);
  assert.equal(seen.total, 1, 'total counts only readable documents');
  await expectError(asFrank.getDocument({ ...target, documentId: 'theirs' }), 404, 'document_not_found');

  await users.updateLabels({ userId: 'frank', labels: ['admin'] });
  const more = await asFrank.listDocuments(target);
  assert.deepEqual(more.documents.map((d) => d.$id), ['mine', 'admins']);
});

test('a document a user creates without permissions gets read/update/delete for that user', async () => {
  const db = new Databases(emu.keyClient());
  await db.createCollection({
    databaseId: 'g3',
    collectionId: 'notes',
    name: 'Notes',
    permissions: [Permission.create(Role.users())],
    documentSecurity: true,
  });
  await db.createStringAttribute({ databaseId: 'g3', collectionId: 'notes', key: 'v', size: 16, required: false });
  await poll(async () => (await db.getAttribute({ databaseId: 'g3', collectionId: 'notes', key: 'v' })).status === 'available', 'v attribute');
  const s = await new Account(emu.keyClient()).createEmailPasswordSession({ email: 'gina@example.com', password: PASSWORD });
  const asGina = new Databases(emu.sessionClient(s.secret));
  const doc = await asGina.createDocument({ databaseId: 'g3', collectionId: 'notes', documentId: 'n1', data: { v: 'x' } });
  assert.deepEqual(doc.$permissions, ['read("user:gina")', 'update("user:gina")', 'delete("user:gina")']);
  assert.equal((await asGina.getDocument({ databaseId: 'g3', collectionId: 'notes', documentId: 'n1' })).v, 'x');
  await expectError(
    asGina.createDocument({
      databaseId: 'g3',
      collectionId: 'notes',
      documentId: 'n2',
      data: { v: 'y' },
      permissions: [Permission.read(Role.user('frank'))],
    }),
    401,
    'user_unauthorized',
  );
});

test('deleting a user removes their memberships', async () => {
  await users.create({ userId: 'kai', email: 'kai@example.com' });
  await teams.createMembership({ teamId: 'paid', roles: [], userId: 'kai' });
  assert.equal((await teams.listMemberships({ teamId: 'paid', queries: [Query.equal('userId', 'kai')] })).total, 1);
  await users.delete({ userId: 'kai' });
  await poll(
    async () => (await teams.listMemberships({ teamId: 'paid', queries: [Query.equal('userId', 'kai')] })).total === 0,
    'the deleted user\'s membership to disappear',
  );
});

// Databases, collections, attributes and indexes through node-appwrite 21.1.0 (Appwrite 1.8.x).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Databases, Permission, Role, IndexType } from 'node-appwrite';

import { startEmulator, expectError, poll, assertAppwriteDate } from './helpers.mjs';

let emu;
let db;

before(async () => {
  emu = await startEmulator();
  db = new Databases(emu.keyClient());
});

after(async () => {
  await emu?.stop();
});

const DB = 'g3';
const COL = 'signals';

async function waitAvailable(key) {
  return poll(async () => {
    const attr = await db.getAttribute({ databaseId: DB, collectionId: COL, key });
    assert.notEqual(attr.status, 'failed', `attribute ${key} failed: ${attr.error}`);
    return attr.status === 'available' ? attr : null;
  }, `attribute ${key} to become available`);
}

test('databases.create returns the database model and get reads it back', async () => {
  const created = await db.create({ databaseId: DB, name: 'G3' });
  assert.equal(created.$id, DB);
  assert.equal(created.name, 'G3');
  assert.equal(created.enabled, true);
  assert.equal(created.type, 'legacy', 'a database made through the documents API is type legacy');
  assertAppwriteDate(created.$createdAt, '$createdAt');
  assertAppwriteDate(created.$updatedAt, '$updatedAt');

  const got = await db.get({ databaseId: DB });
  assert.deepEqual(got, created);
});

test('databases: duplicate id is 409 database_already_exists, unknown id is 404 database_not_found', async () => {
  await expectError(db.create({ databaseId: DB, name: 'again' }), 409, 'database_already_exists');
  assert.equal((await db.get({ databaseId: DB })).name, 'G3', 'the failed create changed nothing');
  await expectError(db.get({ databaseId: 'nope' }), 404, 'database_not_found');
});

test('createCollection / getCollection / updateCollection', async () => {
  const perms = [Permission.read(Role.team('paid')), Permission.read(Role.team('staff'))];
  const created = await db.createCollection({
    databaseId: DB,
    collectionId: COL,
    name: 'Signals',
    permissions: perms,
    documentSecurity: false,
  });
  assert.equal(created.$id, COL);
  assert.equal(created.databaseId, DB);
  assert.equal(created.name, 'Signals');
  assert.equal(created.enabled, true);
  assert.equal(created.documentSecurity, false);
  assert.deepEqual(created.$permissions, ['read("team:paid")', 'read("team:staff")']);
  assert.deepEqual(created.attributes, []);
  assert.deepEqual(created.indexes, []);
  assertAppwriteDate(created.$createdAt, '$createdAt');

  const got = await db.getCollection({ databaseId: DB, collectionId: COL });
  assert.deepEqual(got, created);

  const updated = await db.updateCollection({
    databaseId: DB,
    collectionId: COL,
    name: 'Signals v2',
    permissions: [...perms, Permission.update(Role.team('staff'))],
    documentSecurity: true,
  });
  assert.equal(updated.name, 'Signals v2');
  assert.equal(updated.documentSecurity, true);
  assert.deepEqual(updated.$permissions, ['read("team:paid")', 'read("team:staff")', 'update("team:staff")']);
  const again = await db.getCollection({ databaseId: DB, collectionId: COL });
  assert.equal(again.name, 'Signals v2');
  assert.equal(again.documentSecurity, true);
  assert.deepEqual(again.$permissions, updated.$permissions);
});

test('collections: duplicate is 409 collection_already_exists; unknown collection/database are 404', async () => {
  await expectError(
    db.createCollection({ databaseId: DB, collectionId: COL, name: 'dup' }),
    409,
    'collection_already_exists',
  );
  assert.equal((await db.getCollection({ databaseId: DB, collectionId: COL })).name, 'Signals v2');
  await expectError(db.getCollection({ databaseId: DB, collectionId: 'nope' }), 404, 'collection_not_found');
  await expectError(db.getCollection({ databaseId: 'nope', collectionId: COL }), 404, 'database_not_found');
  await expectError(
    db.createCollection({ databaseId: 'nope', collectionId: 'x', name: 'x' }),
    404,
    'database_not_found',
  );
});

test('every attribute type (and array variants) is accepted, reported, and becomes available', async () => {
  const base = { databaseId: DB, collectionId: COL };
  const s = await db.createStringAttribute({ ...base, key: 'pair', size: 32, required: true });
  assert.equal(s.key, 'pair');
  assert.equal(s.type, 'string');
  assert.equal(s.size, 32);
  assert.equal(s.required, true);
  assert.ok(['processing', 'available'].includes(s.status), `status ${s.status}`);

  const content = await db.createStringAttribute({ ...base, key: 'content', size: 2000, required: false });
  assert.equal(content.size, 2000);
  const note = await db.createStringAttribute({ ...base, key: 'note', size: 64, required: false, xdefault: 'none' });
  assert.equal(note.default, 'none');
  const tags = await db.createStringAttribute({ ...base, key: 'tags', size: 16, required: false, array: true });
  assert.equal(tags.array, true);

  const i = await db.createIntegerAttribute({ ...base, key: 'revision', required: false, min: 0, max: 1000000, xdefault: 0 });
  assert.equal(i.type, 'integer');
  assert.equal(i.min, 0);
  assert.equal(i.max, 1000000);
  assert.equal(i.default, 0);
  const leverage = await db.createIntegerAttribute({ ...base, key: 'levels', required: false, array: true });
  assert.equal(leverage.array, true);

  const f = await db.createFloatAttribute({ ...base, key: 'stop', required: false });
  assert.equal(f.type, 'double', 'Appwrite reports float attributes as type double');
  const targets = await db.createFloatAttribute({ ...base, key: 'targets', required: false, array: true });
  assert.equal(targets.type, 'double');
  assert.equal(targets.array, true);

  const b = await db.createBooleanAttribute({ ...base, key: 'premium', required: false, xdefault: false });
  assert.equal(b.type, 'boolean');
  assert.equal(b.default, false);
  const flags = await db.createBooleanAttribute({ ...base, key: 'flags', required: false, array: true });
  assert.equal(flags.array, true);

  const d = await db.createDatetimeAttribute({ ...base, key: 'postedAt', required: false });
  assert.equal(d.type, 'datetime');
  assert.equal(d.format, 'datetime');
  const seen = await db.createDatetimeAttribute({ ...base, key: 'seenAt', required: false, array: true });
  assert.equal(seen.array, true);

  const e = await db.createEnumAttribute({ ...base, key: 'side', elements: ['long', 'short'], required: false });
  assert.equal(e.type, 'string');
  assert.equal(e.format, 'enum');
  assert.deepEqual(e.elements, ['long', 'short']);
  const markets = await db.createEnumAttribute({
    ...base,
    key: 'markets',
    elements: ['spot', 'futures'],
    required: false,
    array: true,
  });
  assert.equal(markets.array, true);
  assert.equal(markets.format, 'enum');

  const keys = ['pair', 'content', 'note', 'tags', 'revision', 'levels', 'stop', 'targets', 'premium', 'flags', 'postedAt', 'seenAt', 'side', 'markets'];
  for (const key of keys) {
    const attr = await waitAvailable(key);
    assert.equal(attr.key, key);
    assert.equal(typeof attr.error, 'string', 'attribute.error is a string');
  }

  const list = await db.listAttributes({ databaseId: DB, collectionId: COL });
  assert.equal(list.total, keys.length);
  assert.deepEqual(list.attributes.map((a) => a.key), keys, 'attributes are listed in creation order');

  const col = await db.getCollection({ databaseId: DB, collectionId: COL });
  assert.deepEqual(col.attributes.map((a) => a.key), keys, 'collection.attributes holds them too');
});

test('attribute errors: duplicate key is 409 attribute_already_exists; unknown is 404 attribute_not_found', async () => {
  await expectError(
    db.createStringAttribute({ databaseId: DB, collectionId: COL, key: 'pair', size: 10, required: false }),
    409,
    'attribute_already_exists',
  );
  const pair = await db.getAttribute({ databaseId: DB, collectionId: COL, key: 'pair' });
  assert.equal(pair.size, 32, 'the failed create changed nothing');
  await expectError(db.getAttribute({ databaseId: DB, collectionId: COL, key: 'nope' }), 404, 'attribute_not_found');
  await expectError(
    db.createStringAttribute({ databaseId: DB, collectionId: 'nope', key: 'x', size: 10, required: false }),
    404,
    'collection_not_found',
  );
});

test('createIndex (key, unique, fulltext) and listIndexes', async () => {
  const base = { databaseId: DB, collectionId: COL };
  const k = await db.createIndex({ ...base, key: 'by_posted', type: IndexType.Key, attributes: ['postedAt'], orders: ['DESC'] });
  assert.equal(k.key, 'by_posted');
  assert.equal(k.type, 'key');
  assert.deepEqual(k.attributes, ['postedAt']);
  assert.ok(Array.isArray(k.lengths), 'index.lengths is an array');
  assert.ok(['processing', 'available'].includes(k.status), `status ${k.status}`);
  const u = await db.createIndex({ ...base, key: 'uniq_pair_note', type: IndexType.Unique, attributes: ['pair', 'note'] });
  assert.equal(u.type, 'unique');
  const ft = await db.createIndex({ ...base, key: 'ft_content', type: IndexType.Fulltext, attributes: ['content'] });
  assert.equal(ft.type, 'fulltext');

  const list = await poll(async () => {
    const l = await db.listIndexes({ databaseId: DB, collectionId: COL });
    return l.indexes.every((ix) => ix.status === 'available') ? l : null;
  }, 'indexes to become available');
  assert.equal(list.total, 3);
  assert.deepEqual(list.indexes.map((ix) => ix.key), ['by_posted', 'uniq_pair_note', 'ft_content']);

  await expectError(
    db.createIndex({ ...base, key: 'by_posted', type: IndexType.Key, attributes: ['pair'] }),
    409,
    'index_already_exists',
  );
  await expectError(
    db.createIndex({ ...base, key: 'bad_attr', type: IndexType.Key, attributes: ['nope'] }),
    400,
    'attribute_unknown',
  );
  assert.equal((await db.listIndexes({ databaseId: DB, collectionId: COL })).total, 3, 'failed creates changed nothing');
});

test('the unique index is enforced: a duplicate value is 409 document_already_exists', async () => {
  const base = { databaseId: DB, collectionId: COL };
  await db.createDocument({ ...base, documentId: 'u1', data: { pair: 'BTCUSDT', note: 'same' } });
  await expectError(
    db.createDocument({ ...base, documentId: 'u2', data: { pair: 'BTCUSDT', note: 'same' } }),
    409,
    'document_already_exists',
  );
  await expectError(db.getDocument({ ...base, documentId: 'u2' }), 404, 'document_not_found');
});

test('array attributes and long strings round-trip; a bad array element is rejected', async () => {
  const base = { databaseId: DB, collectionId: COL };
  await db.createStringAttribute({ ...base, key: 'raw', size: 100000, required: false });
  await waitAvailable('raw');
  const raw = 'x'.repeat(20000);
  const doc = await db.createDocument({
    ...base,
    documentId: 'arrays',
    data: {
      pair: 'ETHUSDT',
      note: 'arrays',
      tags: ['a', 'b'],
      levels: [1, 2, 3],
      targets: [0.5, 1.25],
      flags: [true, false],
      seenAt: ['2024-05-01T00:00:00.000+00:00'],
      markets: ['spot', 'futures'],
      raw,
    },
  });
  assert.deepEqual(doc.tags, ['a', 'b']);
  assert.deepEqual(doc.levels, [1, 2, 3]);
  assert.deepEqual(doc.targets, [0.5, 1.25]);
  assert.deepEqual(doc.flags, [true, false]);
  assert.deepEqual(doc.seenAt, ['2024-05-01T00:00:00.000+00:00']);
  assert.deepEqual(doc.markets, ['spot', 'futures']);
  assert.equal(doc.raw.length, 20000);
  assert.deepEqual(await db.getDocument({ ...base, documentId: 'arrays' }), doc);
  await expectError(
    db.createDocument({ ...base, documentId: 'badarr', data: { pair: 'X', markets: ['spot', 'nope'] } }),
    400,
    'document_invalid_structure',
  );
  await expectError(
    db.createDocument({ ...base, documentId: 'badarr', data: { pair: 'X', levels: [1, 'two'] } }),
    400,
    'document_invalid_structure',
  );
  await expectError(db.getDocument({ ...base, documentId: 'badarr' }), 404, 'document_not_found');
});

test('getIndex / deleteIndex, deleteAttribute, deleteCollection', async () => {
  const base = { databaseId: DB, collectionId: 'scratch' };
  await db.createCollection({ ...base, name: 'Scratch' });
  await db.createStringAttribute({ ...base, key: 'a', size: 8, required: false });
  await db.createStringAttribute({ ...base, key: 'b', size: 8, required: false });
  await poll(async () => (await db.listAttributes(base)).attributes.every((x) => x.status === 'available'), 'scratch attributes');
  await db.createIndex({ ...base, key: 'ix_a', type: IndexType.Key, attributes: ['a'] });
  const ix = await poll(async () => {
    const got = await db.getIndex({ ...base, key: 'ix_a' });
    return got.status === 'available' ? got : null;
  }, 'index ix_a');
  assert.equal(ix.key, 'ix_a');
  assert.deepEqual(ix.attributes, ['a']);
  await expectError(db.getIndex({ ...base, key: 'nope' }), 404, 'index_not_found');

  await db.deleteIndex({ ...base, key: 'ix_a' });
  await poll(async () => {
    try {
      await db.getIndex({ ...base, key: 'ix_a' });
      return false;
    } catch (e) {
      return e.code === 404 && e.type === 'index_not_found';
    }
  }, 'index ix_a to be gone');

  await db.deleteAttribute({ ...base, key: 'b' });
  await poll(async () => {
    try {
      await db.getAttribute({ ...base, key: 'b' });
      return false;
    } catch (e) {
      return e.code === 404 && e.type === 'attribute_not_found';
    }
  }, 'attribute b to be gone');
  assert.deepEqual((await db.listAttributes(base)).attributes.map((x) => x.key), ['a']);
  await expectError(db.createDocument({ ...base, documentId: 'd', data: { b: 'x' } }), 400, 'document_invalid_structure');

  await db.deleteCollection(base);
  await expectError(db.getCollection(base), 404, 'collection_not_found');
  await expectError(db.listDocuments(base), 404, 'collection_not_found');
});

// Documents and queries through node-appwrite 21.1.0 (Appwrite 1.8.x).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Databases, Permission, Role, Query, ID, IndexType } from 'node-appwrite';

import { startEmulator, expectError, poll, assertDocumentShape, assertAppwriteDate } from './helpers.mjs';

let emu;
let db;
const DB = 'g3';
const COL = 'signals';
const Q = 'quotes';
const base = { databaseId: DB, collectionId: COL };
const qbase = { databaseId: DB, collectionId: Q };

async function waitAll(collectionId) {
  await poll(async () => {
    const l = await db.listAttributes({ databaseId: DB, collectionId });
    return l.attributes.every((a) => a.status === 'available') ? l : null;
  }, `attributes of ${collectionId} to become available`);
  await poll(async () => {
    const l = await db.listIndexes({ databaseId: DB, collectionId });
    return l.indexes.every((a) => a.status === 'available') ? l : null;
  }, `indexes of ${collectionId} to become available`);
}

before(async () => {
  emu = await startEmulator();
  db = new Databases(emu.keyClient());
  await db.create({ databaseId: DB, name: 'G3' });

  await db.createCollection({ ...base, name: 'Signals', permissions: [Permission.read(Role.any())], documentSecurity: true });
  await db.createStringAttribute({ ...base, key: 'pair', size: 16, required: true });
  await db.createStringAttribute({ ...base, key: 'content', size: 200, required: false });
  await db.createIntegerAttribute({ ...base, key: 'revision', required: false, min: 0, max: 1000, xdefault: 0 });
  await db.createFloatAttribute({ ...base, key: 'targets', required: false, array: true });
  await db.createBooleanAttribute({ ...base, key: 'premium', required: false, xdefault: false });
  await db.createDatetimeAttribute({ ...base, key: 'postedAt', required: false });
  await db.createEnumAttribute({ ...base, key: 'side', elements: ['long', 'short'], required: false });
  await db.createStringAttribute({ ...base, key: 'tags', size: 16, required: false, array: true });
  await waitAll(COL);

  await db.createCollection({ ...qbase, name: 'Quotes', permissions: [Permission.read(Role.any())] });
  await db.createStringAttribute({ ...qbase, key: 'name', size: 64, required: true });
  await db.createIntegerAttribute({ ...qbase, key: 'n', required: true });
  await db.createFloatAttribute({ ...qbase, key: 'price', required: false });
  await db.createStringAttribute({ ...qbase, key: 'note', size: 64, required: false });
  await db.createStringAttribute({ ...qbase, key: 'tags', size: 16, required: false, array: true });
  await db.createStringAttribute({ ...qbase, key: 'body', size: 500, required: false });
  await db.createDatetimeAttribute({ ...qbase, key: 'at', required: false });
  await waitAll(Q);
  await db.createIndex({ ...qbase, key: 'ft_body', type: IndexType.Fulltext, attributes: ['body'] });
  await waitAll(Q);
  const rows = [
    { id: 'q1', name: 'alpha', n: 1, price: 1.5, note: null, tags: ['vip', 'btc'], body: 'bitcoin breakout long', at: '2024-01-01T00:00:00.000+00:00' },
    { id: 'q2', name: 'beta', n: 2, price: 2.5, note: 'x', tags: ['eth'], body: 'ether range', at: '2024-01-02T00:00:00.000+00:00' },
    { id: 'q3', name: 'alphabet', n: 3, price: 3.5, note: null, tags: [], body: 'solana pump', at: '2024-01-03T00:00:00.000+00:00' },
    { id: 'q4', name: 'gamma', n: 4, price: 4.5, note: 'y', tags: ['vip'], body: 'bitcoin dump short', at: '2024-01-04T00:00:00.000+00:00' },
    { id: 'q5', name: 'delta', n: 5, price: 5.5, note: 'z', tags: ['btc'], body: 'doge moon', at: '2024-01-05T00:00:00.000+00:00' },
    { id: 'q6', name: 'epsilon', n: 6, price: 6.5, note: null, tags: [], body: 'nothing here', at: '2024-01-06T00:00:00.000+00:00' },
  ];
  for (const { id, ...data } of rows) {
    await db.createDocument({ ...qbase, documentId: id, data });
  }
});

after(async () => {
  await emu?.stop();
});

const ids = (list) => list.documents.map((d) => d.$id);
async function q(...queries) {
  return db.listDocuments({ ...qbase, queries });
}

// ---- CRUD ----

test('createDocument returns the 1.8 document model with every attribute', async () => {
  const doc = await db.createDocument({
    ...base,
    documentId: 'sig1',
    data: {
      pair: 'BTCUSDT',
      content: 'long btc',
      targets: [1.5, 2, 3.25],
      postedAt: '2024-05-01T12:34:56.789Z',
      side: 'long',
      tags: ['vip'],
    },
    permissions: [Permission.read(Role.team('paid')), Permission.update(Role.team('staff'))],
  });
  assertDocumentShape(doc, DB, COL);
  assert.equal(doc.$id, 'sig1');
  assert.equal(doc.pair, 'BTCUSDT');
  assert.equal(doc.content, 'long btc');
  assert.equal(doc.revision, 0, 'integer default applied');
  assert.equal(doc.premium, false, 'boolean default applied');
  assert.deepEqual(doc.targets, [1.5, 2, 3.25]);
  assert.equal(doc.postedAt, '2024-05-01T12:34:56.789+00:00', 'datetimes come back in Appwrite format');
  assert.equal(doc.side, 'long');
  assert.deepEqual(doc.tags, ['vip']);
  assert.deepEqual(doc.$permissions, ['read("team:paid")', 'update("team:staff")']);

  const got = await db.getDocument({ ...base, documentId: 'sig1' });
  assert.deepEqual(got, doc);
});

test('createDocument with ID.unique() gets a server id; optional attributes without default read as null', async () => {
  const doc = await db.createDocument({ ...base, documentId: ID.unique(), data: { pair: 'ETHUSDT' } });
  assert.match(doc.$id, /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,35}$/);
  assert.notEqual(doc.$id, 'unique()');
  assert.equal(doc.content, null);
  assert.equal(doc.postedAt, null);
  assert.equal(doc.side, null);
  assert.deepEqual(doc.$permissions, [], 'no permissions given: none stored');
  const again = await db.createDocument({ ...base, documentId: ID.unique(), data: { pair: 'ETHUSDT' } });
  assert.notEqual(again.$id, doc.$id);
  assert.ok(again.$sequence > doc.$sequence, '$sequence grows');
});

test('updateDocument changes only the given attributes and bumps $updatedAt', async () => {
  const before = await db.getDocument({ ...base, documentId: 'sig1' });
  const updated = await db.updateDocument({ ...base, documentId: 'sig1', data: { revision: 2, content: 'edited' } });
  assertDocumentShape(updated, DB, COL);
  assert.equal(updated.revision, 2);
  assert.equal(updated.content, 'edited');
  assert.equal(updated.pair, 'BTCUSDT');
  assert.deepEqual(updated.targets, [1.5, 2, 3.25]);
  assert.equal(updated.$createdAt, before.$createdAt);
  assert.equal(updated.$sequence, before.$sequence);
  assert.deepEqual(updated.$permissions, before.$permissions, 'permissions kept when not given');
  assert.ok(Date.parse(updated.$updatedAt) >= Date.parse(before.$updatedAt));
  assert.deepEqual(await db.getDocument({ ...base, documentId: 'sig1' }), updated);

  const cleared = await db.updateDocument({ ...base, documentId: 'sig1', data: { content: null } });
  assert.equal(cleared.content, null, 'null clears an optional attribute');
  await db.updateDocument({ ...base, documentId: 'sig1', data: { content: 'edited' } });

  const perms = await db.updateDocument({ ...base, documentId: 'sig1', permissions: [Permission.read(Role.any())] });
  assert.deepEqual(perms.$permissions, ['read("any")']);
  assert.equal(perms.revision, 2, 'a permissions-only update keeps the data');
});

test('upsertDocument creates when absent and replaces when present', async () => {
  const created = await db.upsertDocument({ ...base, documentId: 'ups1', data: { pair: 'SOLUSDT', revision: 1 } });
  assertDocumentShape(created, DB, COL);
  assert.equal(created.$id, 'ups1');
  assert.equal(created.revision, 1);
  const replaced = await db.upsertDocument({ ...base, documentId: 'ups1', data: { pair: 'SOLUSDT', revision: 5, side: 'short' } });
  assert.equal(replaced.$id, 'ups1');
  assert.equal(replaced.revision, 5);
  assert.equal(replaced.side, 'short');
  assert.equal(replaced.$createdAt, created.$createdAt);
  assert.equal(replaced.$sequence, created.$sequence);
  const got = await db.getDocument({ ...base, documentId: 'ups1' });
  assert.equal(got.revision, 5);

  const withPerms = await db.upsertDocument({
    ...base,
    documentId: 'ups2',
    data: { pair: 'ADAUSDT' },
    permissions: [Permission.read(Role.team('paid'))],
  });
  assert.deepEqual(withPerms.$permissions, ['read("team:paid")']);
  const kept = await db.upsertDocument({ ...base, documentId: 'ups2', data: { pair: 'ADAUSDT', revision: 3 } });
  assert.deepEqual(kept.$permissions, ['read("team:paid")'], 'an upsert without permissions keeps the existing ones');
  await expectError(
    db.upsertDocument({ ...base, documentId: 'ups3', data: { revision: 1 } }),
    400,
    'document_invalid_structure',
  );
  await expectError(db.getDocument({ ...base, documentId: 'ups3' }), 404, 'document_not_found');
});

test('deleteDocument removes it; getDocument and a second delete are 404 document_not_found', async () => {
  await db.createDocument({ ...base, documentId: 'gone', data: { pair: 'XRPUSDT' } });
  const res = await db.deleteDocument({ ...base, documentId: 'gone' });
  assert.ok(res === '' || (typeof res === 'object' && Object.keys(res).filter((k) => k !== 'message').length === 0), `204 without a body, got ${JSON.stringify(res)}`);
  await expectError(db.getDocument({ ...base, documentId: 'gone' }), 404, 'document_not_found');
  await expectError(db.deleteDocument({ ...base, documentId: 'gone' }), 404, 'document_not_found');
  await expectError(db.updateDocument({ ...base, documentId: 'gone', data: { revision: 1 } }), 404, 'document_not_found');
});

test('duplicate id is 409 document_already_exists and leaves the original intact', async () => {
  await expectError(
    db.createDocument({ ...base, documentId: 'sig1', data: { pair: 'OTHER' } }),
    409,
    'document_already_exists',
  );
  assert.equal((await db.getDocument({ ...base, documentId: 'sig1' })).pair, 'BTCUSDT');
});

test('invalid structure is 400 document_invalid_structure and changes nothing', async () => {
  const cases = [
    ['unknown attribute', { pair: 'A', nope: 1 }],
    ['wrong type (string for integer)', { pair: 'A', revision: 'three' }],
    ['wrong type (integer for string)', { pair: 123 }],
    ['too-long string', { pair: 'X'.repeat(17) }],
    ['integer above max', { pair: 'A', revision: 1001 }],
    ['value not in enum', { pair: 'A', side: 'sideways' }],
    ['missing required attribute', { content: 'no pair' }],
    ['scalar for array', { pair: 'A', targets: 1.5 }],
    ['bad datetime', { pair: 'A', postedAt: 'yesterday' }],
  ];
  for (const [what, data] of cases) {
    const id = `bad${cases.findIndex((c) => c[0] === what)}`;
    await expectError(db.createDocument({ ...base, documentId: id, data }), 400, 'document_invalid_structure').catch((e) => {
      throw new Error(`${what}: ${e.message}`);
    });
    await expectError(db.getDocument({ ...base, documentId: id }), 404, 'document_not_found');
  }

  const before = await db.getDocument({ ...base, documentId: 'sig1' });
  for (const [what, data] of [
    ['unknown attribute', { nope: 1 }],
    ['wrong type', { revision: 'three' }],
    ['too-long string', { pair: 'X'.repeat(17) }],
  ]) {
    await expectError(db.updateDocument({ ...base, documentId: 'sig1', data }), 400, 'document_invalid_structure').catch((e) => {
      throw new Error(`update with ${what}: ${e.message}`);
    });
  }
  assert.deepEqual(await db.getDocument({ ...base, documentId: 'sig1' }), before, 'bad updates changed nothing');
});

test('bad ids: invalid custom id is 400 general_argument_invalid; unknown collection/database are 404', async () => {
  await expectError(db.createDocument({ ...base, documentId: '_leading', data: { pair: 'A' } }), 400, 'general_argument_invalid');
  await expectError(db.createDocument({ ...base, documentId: 'x'.repeat(37), data: { pair: 'A' } }), 400, 'general_argument_invalid');
  await expectError(db.listDocuments({ databaseId: DB, collectionId: 'nope' }), 404, 'collection_not_found');
  await expectError(db.listDocuments({ databaseId: 'nope', collectionId: COL }), 404, 'database_not_found');
  await expectError(db.createDocument({ databaseId: DB, collectionId: 'nope', documentId: 'a', data: { pair: 'A' } }), 404, 'collection_not_found');
});

test('getDocument with an invalid id is 400 general_argument_invalid (the id is validated before lookup)', async () => {
  await expectError(db.getDocument({ ...base, documentId: '_leading' }), 400, 'general_argument_invalid');
  await expectError(db.getDocument({ ...base, documentId: 'x'.repeat(37) }), 400, 'general_argument_invalid');
});

// ---- queries ----

test('listDocuments without queries: every document, total, in insertion order', async () => {
  const all = await q();
  assert.equal(all.total, 6);
  assert.deepEqual(ids(all), ['q1', 'q2', 'q3', 'q4', 'q5', 'q6']);
  for (const d of all.documents) assertDocumentShape(d, DB, Q);
});

test('comparison queries: equal, notEqual, lessThan(Equal), greaterThan(Equal), between', async () => {
  assert.deepEqual(ids(await q(Query.equal('name', 'beta'))), ['q2']);
  assert.deepEqual(ids(await q(Query.equal('name', ['beta', 'gamma']))), ['q2', 'q4'], 'equal with several values is IN');
  assert.deepEqual(ids(await q(Query.equal('n', 3))), ['q3']);
  assert.deepEqual(ids(await q(Query.notEqual('name', 'beta'))), ['q1', 'q3', 'q4', 'q5', 'q6']);
  assert.deepEqual(ids(await q(Query.lessThan('n', 3))), ['q1', 'q2']);
  assert.deepEqual(ids(await q(Query.lessThanEqual('n', 3))), ['q1', 'q2', 'q3']);
  assert.deepEqual(ids(await q(Query.greaterThan('price', 4.5))), ['q5', 'q6']);
  assert.deepEqual(ids(await q(Query.greaterThanEqual('price', 4.5))), ['q4', 'q5', 'q6']);
  assert.deepEqual(ids(await q(Query.between('n', 2, 4))), ['q2', 'q3', 'q4'], 'between is inclusive');
  assert.deepEqual(ids(await q(Query.greaterThan('at', '2024-01-04T00:00:00.000+00:00'))), ['q5', 'q6']);
  assert.deepEqual(ids(await q(Query.lessThan('n', 5), Query.greaterThan('n', 2))), ['q3', 'q4'], 'queries are ANDed');
});

test('null, prefix, contains and fulltext search queries', async () => {
  assert.deepEqual(ids(await q(Query.isNull('note'))), ['q1', 'q3', 'q6']);
  assert.deepEqual(ids(await q(Query.isNotNull('note'))), ['q2', 'q4', 'q5']);
  assert.deepEqual(ids(await q(Query.startsWith('name', 'alpha'))), ['q1', 'q3']);
  assert.deepEqual(ids(await q(Query.contains('tags', 'vip'))), ['q1', 'q4'], 'contains on a string array');
  assert.deepEqual(ids(await q(Query.contains('tags', ['eth', 'btc']))), ['q1', 'q2', 'q5'], 'contains any of several');
  assert.deepEqual(ids(await q(Query.contains('name', 'lph'))), ['q1', 'q3'], 'contains on a string is a substring match');
  assert.deepEqual(ids(await q(Query.search('body', 'bitcoin'))), ['q1', 'q4']);
});

test('ordering, limit, offset; total counts every match, not the page', async () => {
  assert.deepEqual(ids(await q(Query.orderDesc('n'))), ['q6', 'q5', 'q4', 'q3', 'q2', 'q1']);
  assert.deepEqual(ids(await q(Query.orderAsc('name'))), ['q1', 'q3', 'q2', 'q5', 'q6', 'q4']);
  const page = await q(Query.orderAsc('n'), Query.limit(2), Query.offset(2));
  assert.deepEqual(ids(page), ['q3', 'q4']);
  assert.equal(page.total, 6, 'total ignores limit/offset');
  const filtered = await q(Query.greaterThan('n', 1), Query.limit(1));
  assert.equal(filtered.total, 5);
  assert.equal(filtered.documents.length, 1);
  assert.deepEqual(ids(await q(Query.orderDesc('$createdAt'), Query.limit(1))).length, 1);
  assert.deepEqual(ids(await q(Query.orderDesc('$sequence'), Query.limit(2))), ['q6', 'q5']);
});

test('cursorAfter / cursorBefore page through an ordered list', async () => {
  assert.deepEqual(ids(await q(Query.orderAsc('n'), Query.cursorAfter('q2'), Query.limit(2))), ['q3', 'q4']);
  assert.deepEqual(ids(await q(Query.orderAsc('n'), Query.cursorBefore('q5'), Query.limit(2))), ['q3', 'q4']);
  assert.deepEqual(ids(await q(Query.orderDesc('n'), Query.cursorAfter('q5'), Query.limit(2))), ['q4', 'q3']);
  assert.deepEqual(ids(await q(Query.cursorAfter('q4'))), ['q5', 'q6'], 'default order is insertion order');
  assert.deepEqual(ids(await q(Query.cursorAfter('q6'))), []);
  await expectError(q(Query.cursorAfter('missing')), 400, 'general_cursor_not_found');
});

test('cursor paging ordered by an attribute that is null on the cursor document is 400 database_query_order_null', async () => {
  // q1.note is null: Appwrite refuses to page from it ("Cursor pagination requires all documents
  // order attribute values are non-null").
  await expectError(q(Query.orderAsc('note'), Query.cursorAfter('q1')), 400, 'database_query_order_null');
});

test('select returns the chosen attributes and leaves the others out', async () => {
  const res = await q(Query.select(['name', 'n']), Query.equal('n', 2));
  assert.equal(res.documents.length, 1);
  const [doc] = res.documents;
  assert.equal(doc.name, 'beta');
  assert.equal(doc.n, 2);
  assert.equal('price' in doc, false, 'unselected attribute price is absent');
  assert.equal('body' in doc, false, 'unselected attribute body is absent');
});

test('invalid queries are 400 general_query_invalid', async () => {
  await expectError(q(Query.equal('nope', 'x')), 400, 'general_query_invalid');
  await expectError(q('not json at all'), 400, 'general_query_invalid');
  await expectError(q(JSON.stringify({ method: 'frobnicate', attribute: 'n', values: [1] })), 400, 'general_query_invalid');
  await expectError(q(Query.limit(-1)), 400, 'general_query_invalid');
  await expectError(q(Query.orderAsc('nope')), 400, 'general_query_invalid');
});

test('document dates use Appwrite format', async () => {
  const d = await db.getDocument({ ...qbase, documentId: 'q1' });
  assertAppwriteDate(d.at, 'at');
  assert.equal(d.at, '2024-01-01T00:00:00.000+00:00');
});

test('Query.or combines alternatives', async () => {
  assert.deepEqual(ids(await q(Query.or([Query.equal('n', 1), Query.equal('n', 6)]))), ['q1', 'q6']);
  assert.deepEqual(ids(await q(Query.and([Query.greaterThan('n', 1), Query.lessThan('n', 3)]))), ['q2']);
});

test('the default page is 25 documents; total still counts them all', async () => {
  const mbase = { databaseId: DB, collectionId: 'many' };
  await db.createCollection({ ...mbase, name: 'Many' });
  await db.createIntegerAttribute({ ...mbase, key: 'i', required: true });
  await waitAll('many');
  for (let i = 0; i < 30; i += 1) {
    await db.createDocument({ ...mbase, documentId: `m${String(i).padStart(2, '0')}`, data: { i } });
  }
  const page = await db.listDocuments(mbase);
  assert.equal(page.documents.length, 25, 'default limit is 25');
  assert.equal(page.total, 30);
  const all = await db.listDocuments({ ...mbase, queries: [Query.limit(100)] });
  assert.equal(all.documents.length, 30);
  const rest = await db.listDocuments({ ...mbase, queries: [Query.cursorAfter(page.documents[24].$id)] });
  assert.deepEqual(rest.documents.map((d) => d.i), [25, 26, 27, 28, 29]);
});

test('system attributes are queryable: $id, $createdAt and $updatedAt (catch-up since a cursor)', async () => {
  assert.deepEqual(ids(await q(Query.equal('$id', ['q2', 'q4']))), ['q2', 'q4']);
  assert.deepEqual(ids(await q(Query.orderDesc('$createdAt'), Query.limit(2))), ['q6', 'q5']);
  const before = await db.getDocument({ ...qbase, documentId: 'q3' });
  const updated = await db.updateDocument({ ...qbase, documentId: 'q3', data: { note: 'w' } });
  assert.ok(updated.$updatedAt > before.$updatedAt, `$updatedAt moves forward (${before.$updatedAt} -> ${updated.$updatedAt})`);
  const since = await q(Query.updatedAfter(before.$updatedAt), Query.orderAsc('$updatedAt'));
  assert.ok(ids(since).includes('q3'), 'the updated document is found by updatedAfter(previous $updatedAt)');
  assert.ok(since.documents.every((d) => d.$updatedAt > before.$updatedAt), 'only later updates are returned');
  assert.equal(ids(await q(Query.orderDesc('$updatedAt'), Query.limit(1)))[0], 'q3');
  assert.deepEqual(ids(await q(Query.greaterThan('$updatedAt', updated.$updatedAt))), []);
});

// Storage buckets and files (including a chunked upload over 5 MiB), through node-appwrite 21.1.0
// (Appwrite 1.8.x).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

import { Storage, Users, Teams, Account, Permission, Role, ID } from 'node-appwrite';
import { InputFile } from 'node-appwrite/file';

import { startEmulator, expectError, assertAppwriteDate } from './helpers.mjs';

let emu;
let storage;
const BUCKET = 'signal_assets';
const TEXT = 'hello, signals!\n';
const md5 = (buf) => createHash('md5').update(buf).digest('hex');

before(async () => {
  emu = await startEmulator();
  storage = new Storage(emu.keyClient());
});

after(async () => {
  await emu?.stop();
});

function assertFile(f) {
  assert.equal(typeof f.$id, 'string');
  assert.equal(f.bucketId, BUCKET);
  assertAppwriteDate(f.$createdAt, '$createdAt');
  assertAppwriteDate(f.$updatedAt, '$updatedAt');
  assert.ok(Array.isArray(f.$permissions));
  for (const k of ['name', 'signature', 'mimeType']) assert.equal(typeof f[k], 'string', `file.${k}`);
  for (const k of ['sizeOriginal', 'chunksTotal', 'chunksUploaded']) assert.ok(Number.isInteger(f[k]), `file.${k} is an integer`);
}

test('createBucket / getBucket return the bucket model', async () => {
  const b = await storage.createBucket({
    bucketId: BUCKET,
    name: 'Signal assets',
    permissions: [Permission.read(Role.team('paid')), Permission.read(Role.team('staff'))],
    fileSecurity: false,
    maximumFileSize: 16 * 1024 * 1024,
    allowedFileExtensions: ['png', 'jpg', 'txt', 'bin'],
  });
  assert.equal(b.$id, BUCKET);
  assert.equal(b.name, 'Signal assets');
  assert.equal(b.enabled, true);
  assert.equal(b.fileSecurity, false);
  assert.equal(b.maximumFileSize, 16 * 1024 * 1024);
  assert.deepEqual(b.allowedFileExtensions, ['png', 'jpg', 'txt', 'bin']);
  assert.deepEqual(b.$permissions, ['read("team:paid")', 'read("team:staff")']);
  assert.equal(typeof b.compression, 'string');
  assert.equal(typeof b.encryption, 'boolean');
  assert.equal(typeof b.antivirus, 'boolean');
  assert.equal(typeof b.transformations, 'boolean');
  assert.deepEqual(await storage.getBucket({ bucketId: BUCKET }), b);
  await expectError(storage.getBucket({ bucketId: 'nope' }), 404, 'storage_bucket_not_found');
  await expectError(storage.createBucket({ bucketId: BUCKET, name: 'again' }), 409, 'storage_bucket_already_exists');
});

test('createFile (small) / getFile / getFileView / getFileDownload', async () => {
  const f = await storage.createFile({ bucketId: BUCKET, fileId: 'hello', file: InputFile.fromPlainText(TEXT, 'hello.txt') });
  assertFile(f);
  assert.equal(f.$id, 'hello');
  assert.equal(f.name, 'hello.txt');
  assert.equal(f.sizeOriginal, Buffer.byteLength(TEXT));
  assert.equal(f.mimeType, 'text/plain');
  assert.equal(f.signature, md5(Buffer.from(TEXT)));
  assert.equal(f.chunksTotal, 1);
  assert.equal(f.chunksUploaded, 1);

  assert.deepEqual(await storage.getFile({ bucketId: BUCKET, fileId: 'hello' }), f);
  const view = await storage.getFileView({ bucketId: BUCKET, fileId: 'hello' });
  assert.equal(Buffer.from(view).toString(), TEXT);
  const download = await storage.getFileDownload({ bucketId: BUCKET, fileId: 'hello' });
  assert.equal(Buffer.from(download).toString(), TEXT);
});

test('view is inline and download is an attachment; both honour Range', async () => {
  const headers = { 'X-Appwrite-Project': emu.project, 'X-Appwrite-Key': emu.key };
  const url = (kind) => `${emu.endpoint}/storage/buckets/${BUCKET}/files/hello/${kind}`;
  const view = await fetch(url('view'), { headers });
  assert.equal(view.status, 200);
  assert.match(view.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(view.headers.get('content-disposition') ?? '', /^inline/);
  const dl = await fetch(url('download'), { headers });
  assert.equal(dl.status, 200);
  assert.match(dl.headers.get('content-disposition') ?? '', /^attachment; filename="hello\.txt"/);
  await dl.arrayBuffer();
  await view.arrayBuffer();

  const part = await fetch(url('download'), { headers: { ...headers, Range: 'bytes=0-4' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 0-4/${Buffer.byteLength(TEXT)}`);
  assert.equal(await part.text(), TEXT.slice(0, 5));
  const vpart = await fetch(url('view'), { headers: { ...headers, Range: 'bytes=7-' } });
  assert.equal(vpart.status, 206);
  assert.equal(await vpart.text(), TEXT.slice(7));
});

test('a Range Appwrite cannot satisfy is 416 storage_invalid_range (Appwrite does not clip an end past the file)', async () => {
  const headers = { 'X-Appwrite-Project': emu.project, 'X-Appwrite-Key': emu.key };
  const url = `${emu.endpoint}/storage/buckets/${BUCKET}/files/hello/download`;
  const size = Buffer.byteLength(TEXT);
  for (const range of [`bytes=${size + 10}-${size + 20}`, 'bytes=5-2', `bytes=0-${size + 100}`]) {
    const res = await fetch(url, { headers: { ...headers, Range: range } });
    const body = await res.text();
    assert.equal(res.status, 416, `Range ${range}: expected 416, got ${res.status} ${body.slice(0, 80)}`);
    assert.equal(JSON.parse(body).type, 'storage_invalid_range', `Range ${range}`);
  }
});

test('a file over 5 MiB is uploaded in chunks by the SDK and reassembled', async () => {
  const size = 5 * 1024 * 1024 * 2 + 12345; // three chunks
  const bytes = randomBytes(size);
  const progress = [];
  const f = await storage.createFile({
    bucketId: BUCKET,
    fileId: ID.unique(),
    file: InputFile.fromBuffer(bytes, 'big.bin'),
    onProgress: (p) => progress.push(p),
  });
  assertFile(f);
  assert.equal(progress.length, 3, 'the SDK sent three chunks');
  assert.ok(progress.every((p) => p.$id === f.$id), 'every chunk answered with the same file id');
  assert.equal(f.name, 'big.bin');
  assert.equal(f.sizeOriginal, size);
  assert.equal(f.chunksTotal, 3);
  assert.equal(f.chunksUploaded, 3);
  assert.equal(f.signature, md5(bytes));
  const back = Buffer.from(await storage.getFileDownload({ bucketId: BUCKET, fileId: f.$id }));
  assert.equal(back.length, size);
  assert.ok(back.equals(bytes), 'downloaded bytes equal the uploaded ones');
});

test('bucket limits: too large is 400 storage_invalid_file_size, wrong extension is 400 storage_file_type_unsupported', async () => {
  await storage.createBucket({
    bucketId: 'tiny',
    name: 'Tiny',
    maximumFileSize: 1024,
    allowedFileExtensions: ['png'],
  });
  await expectError(
    storage.createFile({ bucketId: 'tiny', fileId: 'big', file: InputFile.fromBuffer(randomBytes(2048), 'big.png') }),
    400,
    'storage_invalid_file_size',
  );
  await expectError(
    storage.createFile({ bucketId: 'tiny', fileId: 'txt', file: InputFile.fromPlainText('x', 'note.txt') }),
    400,
    'storage_file_type_unsupported',
  );
  await expectError(storage.getFile({ bucketId: 'tiny', fileId: 'big' }), 404, 'storage_file_not_found');
  await expectError(storage.getFile({ bucketId: 'tiny', fileId: 'txt' }), 404, 'storage_file_not_found');
  const ok = await storage.createFile({ bucketId: 'tiny', fileId: 'ok', file: InputFile.fromBuffer(randomBytes(512), 'ok.png') });
  assert.equal(ok.sizeOriginal, 512);
});

test('file errors: duplicate id 409 storage_file_already_exists, unknown file/bucket 404', async () => {
  await expectError(
    storage.createFile({ bucketId: BUCKET, fileId: 'hello', file: InputFile.fromPlainText('other', 'other.txt') }),
    409,
    'storage_file_already_exists',
  );
  const still = Buffer.from(await storage.getFileView({ bucketId: BUCKET, fileId: 'hello' })).toString();
  assert.equal(still, TEXT, 'the original is unchanged');
  await expectError(storage.getFile({ bucketId: BUCKET, fileId: 'nope' }), 404, 'storage_file_not_found');
  await expectError(storage.getFileView({ bucketId: BUCKET, fileId: 'nope' }), 404, 'storage_file_not_found');
  await expectError(storage.getFile({ bucketId: 'nope', fileId: 'hello' }), 404, 'storage_bucket_not_found');
  await expectError(
    storage.createFile({ bucketId: 'nope', fileId: 'x', file: InputFile.fromPlainText('x', 'x.txt') }),
    404,
    'storage_bucket_not_found',
  );
});

test('deleteFile removes the file; a second delete is 404', async () => {
  await storage.createFile({ bucketId: BUCKET, fileId: 'temp', file: InputFile.fromPlainText('temp', 'temp.txt') });
  await storage.deleteFile({ bucketId: BUCKET, fileId: 'temp' });
  await expectError(storage.getFile({ bucketId: BUCKET, fileId: 'temp' }), 404, 'storage_file_not_found');
  await expectError(storage.getFileDownload({ bucketId: BUCKET, fileId: 'temp' }), 404, 'storage_file_not_found');
  await expectError(storage.deleteFile({ bucketId: BUCKET, fileId: 'temp' }), 404, 'storage_file_not_found');
});

test('a bucket readable by team:paid: a session user reads files only while in the team', async () => {
  const users = new Users(emu.keyClient());
  const teams = new Teams(emu.keyClient());
  await users.create({ userId: 'ivan', email: 'ivan@example.com', password: 'correct-horse-1' });
  await teams.create({ teamId: 'paid', name: 'Paid' });
  const s = await new Account(emu.keyClient()).createEmailPasswordSession({ email: 'ivan@example.com', password: 'correct-horse-1' });
  const asIvan = new Storage(emu.sessionClient(s.secret));
  await expectError(asIvan.getFile({ bucketId: BUCKET, fileId: 'hello' }), 401, 'user_unauthorized');
  await expectError(asIvan.getFileView({ bucketId: BUCKET, fileId: 'hello' }), 401, 'user_unauthorized');
  await teams.createMembership({ teamId: 'paid', roles: [], userId: 'ivan' });
  assert.equal((await asIvan.getFile({ bucketId: BUCKET, fileId: 'hello' })).$id, 'hello');
  assert.equal(Buffer.from(await asIvan.getFileView({ bucketId: BUCKET, fileId: 'hello' })).toString(), TEXT);
});

"""Storage buckets and files, including the SDK's own chunked upload of a file over 5 MiB, through
the Python SDK (appwrite 15.3.0, Appwrite 1.8.x). Mirrors tests/conformance/storage.test.mjs."""

import hashlib
import json
import os

import pytest
import requests
from appwrite.id import ID
from appwrite.input_file import InputFile
from appwrite.permission import Permission
from appwrite.role import Role
from appwrite.services.account import Account
from appwrite.services.storage import Storage
from appwrite.services.teams import Teams
from appwrite.services.users import Users

from conftest import assert_date, assert_no_content, expect_error

BUCKET = "signal_assets"
TEXT = b"hello, signals!\n"
MIB = 1024 * 1024


def md5(data):
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def storage(emu):
    return Storage(emu.key_client())


def assert_file(f):
    assert isinstance(f["$id"], str)
    assert f["bucketId"] == BUCKET
    assert_date(f["$createdAt"], "$createdAt")
    assert_date(f["$updatedAt"], "$updatedAt")
    assert isinstance(f["$permissions"], list)
    for k in ["name", "signature", "mimeType"]:
        assert isinstance(f[k], str), f"file.{k}"
    for k in ["sizeOriginal", "chunksTotal", "chunksUploaded"]:
        assert isinstance(f[k], int), f"file.{k} is an integer"


def test_create_and_get_bucket(storage):
    b = storage.create_bucket(
        bucket_id=BUCKET,
        name="Signal assets",
        permissions=[Permission.read(Role.team("paid")), Permission.read(Role.team("staff"))],
        file_security=False,
        maximum_file_size=16 * MIB,
        allowed_file_extensions=["png", "jpg", "txt", "bin"],
    )
    assert (b["$id"], b["name"], b["enabled"], b["fileSecurity"]) == (BUCKET, "Signal assets", True, False)
    assert b["maximumFileSize"] == 16 * MIB
    assert b["allowedFileExtensions"] == ["png", "jpg", "txt", "bin"]
    assert b["$permissions"] == ['read("team:paid")', 'read("team:staff")']
    assert isinstance(b["compression"], str)
    for k in ["encryption", "antivirus", "transformations"]:
        assert isinstance(b[k], bool), f"bucket.{k}"
    assert storage.get_bucket(bucket_id=BUCKET) == b
    expect_error(lambda: storage.get_bucket(bucket_id="nope"), 404, "storage_bucket_not_found")
    expect_error(lambda: storage.create_bucket(bucket_id=BUCKET, name="again"), 409, "storage_bucket_already_exists")


def test_create_small_file_get_view_download(storage):
    f = storage.create_file(bucket_id=BUCKET, file_id="hello", file=InputFile.from_bytes(TEXT, "hello.txt"))
    assert_file(f)
    assert (f["$id"], f["name"], f["sizeOriginal"]) == ("hello", "hello.txt", len(TEXT))
    assert f["mimeType"] == "text/plain"
    assert f["signature"] == md5(TEXT)
    assert (f["chunksTotal"], f["chunksUploaded"]) == (1, 1)
    assert storage.get_file(bucket_id=BUCKET, file_id="hello") == f
    assert storage.get_file_view(bucket_id=BUCKET, file_id="hello") == TEXT
    assert storage.get_file_download(bucket_id=BUCKET, file_id="hello") == TEXT


def test_create_file_from_a_path_with_permissions(storage, tmp_path):
    path = tmp_path / "from-disk.txt"
    path.write_bytes(b"on disk\n")
    f = storage.create_file(
        bucket_id=BUCKET,
        file_id="fromdisk",
        file=InputFile.from_path(str(path)),
        permissions=[Permission.read(Role.any())],
    )
    assert (f["name"], f["sizeOriginal"]) == ("from-disk.txt", 8)
    assert f["$permissions"] == ['read("any")'], "permissions[N] multipart fields are read"
    assert storage.get_file_download(bucket_id=BUCKET, file_id="fromdisk") == b"on disk\n"


def test_view_is_inline_download_is_attachment_both_honour_range(emu):
    headers = {"X-Appwrite-Project": emu.project, "X-Appwrite-Key": emu.key}

    def url(kind):
        return f"{emu.endpoint}/storage/buckets/{BUCKET}/files/hello/{kind}"

    view = requests.get(url("view"), headers=headers, timeout=10)
    assert view.status_code == 200
    assert view.headers.get("content-type", "").startswith("text/plain")
    assert view.headers.get("content-disposition", "").startswith("inline")
    dl = requests.get(url("download"), headers=headers, timeout=10)
    assert dl.status_code == 200
    assert dl.headers.get("content-disposition", "").startswith('attachment; filename="hello.txt"')

    part = requests.get(url("download"), headers={**headers, "Range": "bytes=0-4"}, timeout=10)
    assert part.status_code == 206
    assert part.headers.get("content-range") == f"bytes 0-4/{len(TEXT)}"
    assert part.content == TEXT[:5]
    vpart = requests.get(url("view"), headers={**headers, "Range": "bytes=7-"}, timeout=10)
    assert vpart.status_code == 206
    assert vpart.content == TEXT[7:]


def test_unsatisfiable_range_is_416(emu):
    headers = {"X-Appwrite-Project": emu.project, "X-Appwrite-Key": emu.key}
    url = f"{emu.endpoint}/storage/buckets/{BUCKET}/files/hello/download"
    size = len(TEXT)
    for rng in [f"bytes={size + 10}-{size + 20}", "bytes=5-2", f"bytes=0-{size + 100}"]:
        res = requests.get(url, headers={**headers, "Range": rng}, timeout=10)
        assert res.status_code == 416, f"Range {rng}: got {res.status_code} {res.text[:80]}"
        assert json.loads(res.text)["type"] == "storage_invalid_range", f"Range {rng}"


@pytest.mark.parametrize("source", ["bytes", "path"])
def test_file_over_5_mib_is_uploaded_in_chunks_by_the_sdk(storage, tmp_path, source):
    size = 5 * MIB * 2 + 12345  # three chunks
    data = os.urandom(size)
    if source == "bytes":
        upload = InputFile.from_bytes(data, "big.bin")
    else:
        path = tmp_path / "big.bin"
        path.write_bytes(data)
        upload = InputFile.from_path(str(path))
    progress = []
    f = storage.create_file(bucket_id=BUCKET, file_id=ID.unique(), file=upload, on_progress=progress.append)
    assert_file(f)
    assert len(progress) == 3, "the SDK sent three chunks"
    assert all(p["$id"] == f["$id"] for p in progress), "every chunk answered with the same file id"
    assert [p["chunksUploaded"] for p in progress] == [1, 2, 3]
    assert all(p["chunksTotal"] == 3 for p in progress)
    assert (f["name"], f["sizeOriginal"], f["chunksTotal"], f["chunksUploaded"]) == ("big.bin", size, 3, 3)
    assert f["signature"] == md5(data)
    back = storage.get_file_download(bucket_id=BUCKET, file_id=f["$id"])
    assert len(back) == size
    assert back == data, "downloaded bytes equal the uploaded ones"


def test_interrupted_chunked_upload_is_resumed_by_the_sdk(emu, storage, tmp_path):
    """The SDK first asks for the file (GET .../files/{id}); when an earlier attempt left chunks,
    it resumes after `chunksUploaded` (sending `fileId`, no `x-appwrite-id`)."""
    size = 5 * MIB * 2 + 777
    data = os.urandom(size)
    headers = {
        "X-Appwrite-Project": emu.project,
        "X-Appwrite-Key": emu.key,
        "Content-Range": f"bytes 0-{5 * MIB - 1}/{size}",
    }
    first = requests.post(
        f"{emu.endpoint}/storage/buckets/{BUCKET}/files",
        headers=headers,
        data={"fileId": "resumed"},
        files={"file": ("resumed.bin", data[: 5 * MIB])},
        timeout=30,
    )
    assert first.status_code == 201, first.text
    partial = storage.get_file(bucket_id=BUCKET, file_id="resumed")
    assert (partial["chunksTotal"], partial["chunksUploaded"]) == (3, 1)

    path = tmp_path / "resumed.bin"
    path.write_bytes(data)
    progress = []
    f = storage.create_file(
        bucket_id=BUCKET, file_id="resumed", file=InputFile.from_path(str(path)), on_progress=progress.append
    )
    assert [p["chunksUploaded"] for p in progress] == [2, 3], "only the missing chunks were sent"
    assert (f["$id"], f["sizeOriginal"], f["chunksUploaded"]) == ("resumed", size, 3)
    assert f["signature"] == md5(data)
    assert storage.get_file_download(bucket_id=BUCKET, file_id="resumed") == data


def test_bucket_limits(storage):
    storage.create_bucket(bucket_id="tiny", name="Tiny", maximum_file_size=1024, allowed_file_extensions=["png"])
    expect_error(
        lambda: storage.create_file(bucket_id="tiny", file_id="big", file=InputFile.from_bytes(os.urandom(2048), "big.png")),
        400,
        "storage_invalid_file_size",
    )
    expect_error(
        lambda: storage.create_file(bucket_id="tiny", file_id="txt", file=InputFile.from_bytes(b"x", "note.txt")),
        400,
        "storage_file_type_unsupported",
    )
    expect_error(lambda: storage.get_file(bucket_id="tiny", file_id="big"), 404, "storage_file_not_found")
    expect_error(lambda: storage.get_file(bucket_id="tiny", file_id="txt"), 404, "storage_file_not_found")
    ok = storage.create_file(bucket_id="tiny", file_id="ok", file=InputFile.from_bytes(os.urandom(512), "ok.png"))
    assert ok["sizeOriginal"] == 512


def test_file_errors(storage):
    expect_error(
        lambda: storage.create_file(bucket_id=BUCKET, file_id="hello", file=InputFile.from_bytes(b"other", "other.txt")),
        409,
        "storage_file_already_exists",
    )
    assert storage.get_file_view(bucket_id=BUCKET, file_id="hello") == TEXT, "the original is unchanged"
    expect_error(lambda: storage.get_file(bucket_id=BUCKET, file_id="nope"), 404, "storage_file_not_found")
    expect_error(lambda: storage.get_file_view(bucket_id=BUCKET, file_id="nope"), 404, "storage_file_not_found")
    expect_error(lambda: storage.get_file(bucket_id="nope", file_id="hello"), 404, "storage_bucket_not_found")
    expect_error(
        lambda: storage.create_file(bucket_id="nope", file_id="x", file=InputFile.from_bytes(b"x", "x.txt")),
        404,
        "storage_bucket_not_found",
    )


def test_delete_file_second_delete_404(storage):
    storage.create_file(bucket_id=BUCKET, file_id="temp", file=InputFile.from_bytes(b"temp", "temp.txt"))
    assert_no_content(storage.delete_file(bucket_id=BUCKET, file_id="temp"))
    expect_error(lambda: storage.get_file(bucket_id=BUCKET, file_id="temp"), 404, "storage_file_not_found")
    expect_error(lambda: storage.get_file_download(bucket_id=BUCKET, file_id="temp"), 404, "storage_file_not_found")
    expect_error(lambda: storage.delete_file(bucket_id=BUCKET, file_id="temp"), 404, "storage_file_not_found")


def test_team_readable_bucket_seen_by_a_session_only_while_a_member(emu):
    users = Users(emu.key_client())
    teams = Teams(emu.key_client())
    users.create(user_id="ivan", email="ivan@example.com", password="correct-horse-1")
    teams.create(team_id="paid", name="Paid")
    s = Account(emu.key_client()).create_email_password_session(email="ivan@example.com", password="correct-horse-1")
    as_ivan = Storage(emu.session_client(s["secret"]))
    expect_error(lambda: as_ivan.get_file(bucket_id=BUCKET, file_id="hello"), 401, "user_unauthorized")
    expect_error(lambda: as_ivan.get_file_view(bucket_id=BUCKET, file_id="hello"), 401, "user_unauthorized")
    teams.create_membership(team_id="paid", roles=[], user_id="ivan")
    assert as_ivan.get_file(bucket_id=BUCKET, file_id="hello")["$id"] == "hello"
    assert as_ivan.get_file_view(bucket_id=BUCKET, file_id="hello") == TEXT


def test_delete_bucket(storage):
    storage.create_bucket(bucket_id="scratch", name="Scratch")
    assert_no_content(storage.delete_bucket(bucket_id="scratch"))
    expect_error(lambda: storage.get_bucket(bucket_id="scratch"), 404, "storage_bucket_not_found")

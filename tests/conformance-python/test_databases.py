"""Databases, collections, attributes and indexes through the Python SDK (appwrite 15.3.0,
Appwrite 1.8.x). Mirrors tests/conformance/databases.test.mjs."""

import pytest
from appwrite.enums.index_type import IndexType
from appwrite.enums.order_by import OrderBy
from appwrite.exception import AppwriteException
from appwrite.permission import Permission
from appwrite.role import Role
from appwrite.services.databases import Databases

from conftest import assert_date, assert_no_content, expect_error, poll

DB = "g3"
COL = "signals"
BASE = {"database_id": DB, "collection_id": COL}


@pytest.fixture(scope="module")
def db(emu):
    return Databases(emu.key_client())


def wait_available(db, key, collection_id=COL):
    def ready():
        attr = db.get_attribute(database_id=DB, collection_id=collection_id, key=key)
        assert attr["status"] != "failed", f"attribute {key} failed: {attr.get('error')}"
        return attr if attr["status"] == "available" else None

    return poll(ready, f"attribute {key} to become available")


def gone(fn, code, kind):
    """True once `fn` raises this Appwrite error (for asynchronous deletes)."""
    try:
        fn()
    except AppwriteException as err:
        return err.code == code and err.type == kind
    return False


def test_create_returns_the_database_model_and_get_reads_it(db):
    created = db.create(database_id=DB, name="G3")
    assert (created["$id"], created["name"], created["enabled"]) == (DB, "G3", True)
    assert created["type"] == "legacy", "a database made through the documents API is type legacy"
    assert_date(created["$createdAt"], "$createdAt")
    assert_date(created["$updatedAt"], "$updatedAt")
    assert db.get(database_id=DB) == created


def test_duplicate_database_409_unknown_404(db):
    expect_error(lambda: db.create(database_id=DB, name="again"), 409, "database_already_exists")
    assert db.get(database_id=DB)["name"] == "G3", "the failed create changed nothing"
    expect_error(lambda: db.get(database_id="nope"), 404, "database_not_found")


def test_create_get_update_collection(db):
    perms = [Permission.read(Role.team("paid")), Permission.read(Role.team("staff"))]
    created = db.create_collection(**BASE, name="Signals", permissions=perms, document_security=False)
    assert (created["$id"], created["databaseId"], created["name"]) == (COL, DB, "Signals")
    assert created["enabled"] is True
    assert created["documentSecurity"] is False
    assert created["$permissions"] == ['read("team:paid")', 'read("team:staff")']
    assert created["attributes"] == []
    assert created["indexes"] == []
    assert_date(created["$createdAt"], "$createdAt")
    assert db.get_collection(**BASE) == created

    updated = db.update_collection(
        **BASE, name="Signals v2", permissions=[*perms, Permission.update(Role.team("staff"))], document_security=True
    )
    assert updated["name"] == "Signals v2"
    assert updated["documentSecurity"] is True
    assert updated["$permissions"] == ['read("team:paid")', 'read("team:staff")', 'update("team:staff")']
    again = db.get_collection(**BASE)
    assert (again["name"], again["documentSecurity"]) == ("Signals v2", True)
    assert again["$permissions"] == updated["$permissions"]


def test_collection_errors(db):
    expect_error(lambda: db.create_collection(**BASE, name="dup"), 409, "collection_already_exists")
    assert db.get_collection(**BASE)["name"] == "Signals v2"
    expect_error(lambda: db.get_collection(database_id=DB, collection_id="nope"), 404, "collection_not_found")
    expect_error(lambda: db.get_collection(database_id="nope", collection_id=COL), 404, "database_not_found")
    expect_error(
        lambda: db.create_collection(database_id="nope", collection_id="x", name="x"), 404, "database_not_found"
    )


def test_every_attribute_type_becomes_available(db):
    s = db.create_string_attribute(**BASE, key="pair", size=32, required=True)
    assert (s["key"], s["type"], s["size"], s["required"]) == ("pair", "string", 32, True)
    assert s["status"] in ("processing", "available")
    assert db.create_string_attribute(**BASE, key="content", size=2000, required=False)["size"] == 2000
    assert db.create_string_attribute(**BASE, key="note", size=64, required=False, default="none")["default"] == "none"
    assert db.create_string_attribute(**BASE, key="tags", size=16, required=False, array=True)["array"] is True

    i = db.create_integer_attribute(**BASE, key="revision", required=False, min=0, max=1000000, default=0)
    assert (i["type"], i["min"], i["max"], i["default"]) == ("integer", 0, 1000000, 0)
    assert db.create_integer_attribute(**BASE, key="levels", required=False, array=True)["array"] is True

    f = db.create_float_attribute(**BASE, key="stop", required=False)
    assert f["type"] == "double", "Appwrite reports float attributes as type double"
    targets = db.create_float_attribute(**BASE, key="targets", required=False, array=True)
    assert (targets["type"], targets["array"]) == ("double", True)

    b = db.create_boolean_attribute(**BASE, key="premium", required=False, default=False)
    assert (b["type"], b["default"]) == ("boolean", False)
    assert db.create_boolean_attribute(**BASE, key="flags", required=False, array=True)["array"] is True

    d = db.create_datetime_attribute(**BASE, key="postedAt", required=False)
    assert (d["type"], d["format"]) == ("datetime", "datetime")
    assert db.create_datetime_attribute(**BASE, key="seenAt", required=False, array=True)["array"] is True

    e = db.create_enum_attribute(**BASE, key="side", elements=["long", "short"], required=False)
    assert (e["type"], e["format"], e["elements"]) == ("string", "enum", ["long", "short"])
    markets = db.create_enum_attribute(**BASE, key="markets", elements=["spot", "futures"], required=False, array=True)
    assert (markets["array"], markets["format"]) == (True, "enum")

    keys = ["pair", "content", "note", "tags", "revision", "levels", "stop", "targets", "premium", "flags",
            "postedAt", "seenAt", "side", "markets"]  # fmt: skip
    for key in keys:
        attr = wait_available(db, key)
        assert attr["key"] == key
        assert isinstance(attr["error"], str), "attribute.error is a string"
    listed = db.list_attributes(**BASE)
    assert listed["total"] == len(keys)
    assert [a["key"] for a in listed["attributes"]] == keys, "attributes are listed in creation order"
    assert [a["key"] for a in db.get_collection(**BASE)["attributes"]] == keys


def test_attribute_errors(db):
    expect_error(
        lambda: db.create_string_attribute(**BASE, key="pair", size=10, required=False), 409, "attribute_already_exists"
    )
    assert db.get_attribute(**BASE, key="pair")["size"] == 32, "the failed create changed nothing"
    expect_error(lambda: db.get_attribute(**BASE, key="nope"), 404, "attribute_not_found")
    expect_error(
        lambda: db.create_string_attribute(database_id=DB, collection_id="nope", key="x", size=10, required=False),
        404,
        "collection_not_found",
    )


def test_create_index_key_unique_fulltext_and_list(db):
    k = db.create_index(**BASE, key="by_posted", type=IndexType.KEY, attributes=["postedAt"], orders=[OrderBy.DESC])
    assert (k["key"], k["type"], k["attributes"]) == ("by_posted", "key", ["postedAt"])
    assert isinstance(k["lengths"], list), "index.lengths is a list"
    assert k["status"] in ("processing", "available")
    assert db.create_index(**BASE, key="uniq_pair_note", type=IndexType.UNIQUE, attributes=["pair", "note"])["type"] == "unique"
    assert db.create_index(**BASE, key="ft_content", type=IndexType.FULLTEXT, attributes=["content"])["type"] == "fulltext"

    def all_available():
        listed = db.list_indexes(**BASE)
        return listed if all(ix["status"] == "available" for ix in listed["indexes"]) else None

    listed = poll(all_available, "indexes to become available")
    assert listed["total"] == 3
    assert [ix["key"] for ix in listed["indexes"]] == ["by_posted", "uniq_pair_note", "ft_content"]
    expect_error(
        lambda: db.create_index(**BASE, key="by_posted", type=IndexType.KEY, attributes=["pair"]),
        409,
        "index_already_exists",
    )
    expect_error(
        lambda: db.create_index(**BASE, key="bad_attr", type=IndexType.KEY, attributes=["nope"]), 400, "attribute_unknown"
    )
    assert db.list_indexes(**BASE)["total"] == 3, "failed creates changed nothing"


def test_unique_index_is_enforced(db):
    db.create_document(**BASE, document_id="u1", data={"pair": "BTCUSDT", "note": "same"})
    expect_error(
        lambda: db.create_document(**BASE, document_id="u2", data={"pair": "BTCUSDT", "note": "same"}),
        409,
        "document_already_exists",
    )
    expect_error(lambda: db.get_document(**BASE, document_id="u2"), 404, "document_not_found")


def test_arrays_and_long_strings_round_trip(db):
    db.create_string_attribute(**BASE, key="raw", size=100000, required=False)
    wait_available(db, "raw")
    raw = "x" * 20000
    doc = db.create_document(
        **BASE,
        document_id="arrays",
        data={
            "pair": "ETHUSDT",
            "note": "arrays",
            "tags": ["a", "b"],
            "levels": [1, 2, 3],
            "targets": [0.5, 1.25],
            "flags": [True, False],
            "seenAt": ["2024-05-01T00:00:00.000+00:00"],
            "markets": ["spot", "futures"],
            "raw": raw,
        },
    )
    assert doc["tags"] == ["a", "b"]
    assert doc["levels"] == [1, 2, 3]
    assert doc["targets"] == [0.5, 1.25]
    assert doc["flags"] == [True, False]
    assert doc["seenAt"] == ["2024-05-01T00:00:00.000+00:00"]
    assert doc["markets"] == ["spot", "futures"]
    assert len(doc["raw"]) == 20000
    assert db.get_document(**BASE, document_id="arrays") == doc
    for data in ({"pair": "X", "markets": ["spot", "nope"]}, {"pair": "X", "levels": [1, "two"]}):
        expect_error(lambda: db.create_document(**BASE, document_id="badarr", data=data), 400, "document_invalid_structure")
    expect_error(lambda: db.get_document(**BASE, document_id="badarr"), 404, "document_not_found")


def test_index_attribute_and_collection_deletes(db):
    base = {"database_id": DB, "collection_id": "scratch"}
    db.create_collection(**base, name="Scratch")
    db.create_string_attribute(**base, key="a", size=8, required=False)
    db.create_string_attribute(**base, key="b", size=8, required=False)
    poll(lambda: all(x["status"] == "available" for x in db.list_attributes(**base)["attributes"]), "scratch attributes")
    db.create_index(**base, key="ix_a", type=IndexType.KEY, attributes=["a"])
    def ix_available():
        got = db.get_index(**base, key="ix_a")
        return got if got["status"] == "available" else None

    ix = poll(ix_available, "index ix_a")
    assert (ix["key"], ix["attributes"]) == ("ix_a", ["a"])
    expect_error(lambda: db.get_index(**base, key="nope"), 404, "index_not_found")

    assert_no_content(db.delete_index(**base, key="ix_a"))
    poll(lambda: gone(lambda: db.get_index(**base, key="ix_a"), 404, "index_not_found"), "index ix_a to be gone")
    assert_no_content(db.delete_attribute(**base, key="b"))
    poll(lambda: gone(lambda: db.get_attribute(**base, key="b"), 404, "attribute_not_found"), "attribute b to be gone")
    assert [x["key"] for x in db.list_attributes(**base)["attributes"]] == ["a"]
    expect_error(lambda: db.create_document(**base, document_id="d", data={"b": "x"}), 400, "document_invalid_structure")

    assert_no_content(db.delete_collection(**base))
    expect_error(lambda: db.get_collection(**base), 404, "collection_not_found")
    expect_error(lambda: db.list_documents(**base), 404, "collection_not_found")


def test_delete_database(db):
    db.create(database_id="scratchdb", name="Scratch")
    assert_no_content(db.delete(database_id="scratchdb"))
    expect_error(lambda: db.get(database_id="scratchdb"), 404, "database_not_found")

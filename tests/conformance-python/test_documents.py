"""Documents CRUD and queries through the Python SDK (appwrite 15.3.0, Appwrite 1.8.x).
Mirrors tests/conformance/documents.test.mjs."""

import json
import re

import pytest
from appwrite.enums.index_type import IndexType
from appwrite.id import ID
from appwrite.permission import Permission
from appwrite.query import Query
from appwrite.role import Role
from appwrite.services.databases import Databases

from conftest import assert_date, assert_document_shape, assert_no_content, expect_error, poll

DB = "g3"
COL = "signals"
Q = "quotes"
BASE = {"database_id": DB, "collection_id": COL}
QBASE = {"database_id": DB, "collection_id": Q}
ROWS = [
    {"id": "q1", "name": "alpha", "n": 1, "price": 1.5, "note": None, "tags": ["vip", "btc"], "body": "bitcoin breakout long", "at": "2024-01-01T00:00:00.000+00:00"},
    {"id": "q2", "name": "beta", "n": 2, "price": 2.5, "note": "x", "tags": ["eth"], "body": "ether range", "at": "2024-01-02T00:00:00.000+00:00"},
    {"id": "q3", "name": "alphabet", "n": 3, "price": 3.5, "note": None, "tags": [], "body": "solana pump", "at": "2024-01-03T00:00:00.000+00:00"},
    {"id": "q4", "name": "gamma", "n": 4, "price": 4.5, "note": "y", "tags": ["vip"], "body": "bitcoin dump short", "at": "2024-01-04T00:00:00.000+00:00"},
    {"id": "q5", "name": "delta", "n": 5, "price": 5.5, "note": "z", "tags": ["btc"], "body": "doge moon", "at": "2024-01-05T00:00:00.000+00:00"},
    {"id": "q6", "name": "epsilon", "n": 6, "price": 6.5, "note": None, "tags": [], "body": "nothing here", "at": "2024-01-06T00:00:00.000+00:00"},
]  # fmt: skip


def wait_all(db, collection_id):
    target = {"database_id": DB, "collection_id": collection_id}
    poll(lambda: all(a["status"] == "available" for a in db.list_attributes(**target)["attributes"]), f"attributes of {collection_id}")
    poll(lambda: all(i["status"] == "available" for i in db.list_indexes(**target)["indexes"]), f"indexes of {collection_id}")


@pytest.fixture(scope="module")
def db(emu):
    db = Databases(emu.key_client())
    db.create(database_id=DB, name="G3")
    db.create_collection(**BASE, name="Signals", permissions=[Permission.read(Role.any())], document_security=True)
    db.create_string_attribute(**BASE, key="pair", size=16, required=True)
    db.create_string_attribute(**BASE, key="content", size=200, required=False)
    db.create_integer_attribute(**BASE, key="revision", required=False, min=0, max=1000, default=0)
    db.create_float_attribute(**BASE, key="targets", required=False, array=True)
    db.create_boolean_attribute(**BASE, key="premium", required=False, default=False)
    db.create_datetime_attribute(**BASE, key="postedAt", required=False)
    db.create_enum_attribute(**BASE, key="side", elements=["long", "short"], required=False)
    db.create_string_attribute(**BASE, key="tags", size=16, required=False, array=True)
    wait_all(db, COL)

    db.create_collection(**QBASE, name="Quotes", permissions=[Permission.read(Role.any())])
    db.create_string_attribute(**QBASE, key="name", size=64, required=True)
    db.create_integer_attribute(**QBASE, key="n", required=True)
    db.create_float_attribute(**QBASE, key="price", required=False)
    db.create_string_attribute(**QBASE, key="note", size=64, required=False)
    db.create_string_attribute(**QBASE, key="tags", size=16, required=False, array=True)
    db.create_string_attribute(**QBASE, key="body", size=500, required=False)
    db.create_datetime_attribute(**QBASE, key="at", required=False)
    wait_all(db, Q)
    db.create_index(**QBASE, key="ft_body", type=IndexType.FULLTEXT, attributes=["body"])
    wait_all(db, Q)
    for row in ROWS:
        data = {k: v for k, v in row.items() if k != "id"}
        db.create_document(**QBASE, document_id=row["id"], data=data)
    return db


def ids(listed):
    return [d["$id"] for d in listed["documents"]]


@pytest.fixture(scope="module")
def q(db):
    return lambda *queries: db.list_documents(**QBASE, queries=list(queries))


# ---- CRUD ----


def test_create_document_returns_the_18_model(db):
    doc = db.create_document(
        **BASE,
        document_id="sig1",
        data={
            "pair": "BTCUSDT",
            "content": "long btc",
            "targets": [1.5, 2, 3.25],
            "postedAt": "2024-05-01T12:34:56.789Z",
            "side": "long",
            "tags": ["vip"],
        },
        permissions=[Permission.read(Role.team("paid")), Permission.update(Role.team("staff"))],
    )
    assert_document_shape(doc, DB, COL)
    assert (doc["$id"], doc["pair"], doc["content"]) == ("sig1", "BTCUSDT", "long btc")
    assert doc["revision"] == 0, "integer default applied"
    assert doc["premium"] is False, "boolean default applied"
    assert doc["targets"] == [1.5, 2, 3.25]
    assert doc["postedAt"] == "2024-05-01T12:34:56.789+00:00"
    assert doc["side"] == "long"
    assert doc["tags"] == ["vip"]
    assert doc["$permissions"] == ['read("team:paid")', 'update("team:staff")']
    assert db.get_document(**BASE, document_id="sig1") == doc


def test_create_with_client_and_server_ids_optional_attributes_read_null(db):
    doc = db.create_document(**BASE, document_id=ID.unique(), data={"pair": "ETHUSDT"})
    assert re.match(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,35}$", doc["$id"])
    assert (doc["content"], doc["postedAt"], doc["side"]) == (None, None, None)
    assert doc["$permissions"] == [], "no permissions given: none stored"
    again = db.create_document(**BASE, document_id="unique()", data={"pair": "ETHUSDT"})
    assert again["$id"] not in (doc["$id"], "unique()")
    assert again["$sequence"] > doc["$sequence"], "$sequence grows"


def test_update_document_changes_only_given_attributes(db):
    before = db.get_document(**BASE, document_id="sig1")
    updated = db.update_document(**BASE, document_id="sig1", data={"revision": 2, "content": "edited"})
    assert_document_shape(updated, DB, COL)
    assert (updated["revision"], updated["content"], updated["pair"]) == (2, "edited", "BTCUSDT")
    assert updated["targets"] == [1.5, 2, 3.25]
    assert updated["$createdAt"] == before["$createdAt"]
    assert updated["$sequence"] == before["$sequence"]
    assert updated["$permissions"] == before["$permissions"], "permissions kept when not given"
    assert updated["$updatedAt"] >= before["$updatedAt"]
    assert db.get_document(**BASE, document_id="sig1") == updated

    cleared = db.update_document(**BASE, document_id="sig1", data={"content": None})
    assert cleared["content"] is None, "null clears an optional attribute"
    db.update_document(**BASE, document_id="sig1", data={"content": "edited"})

    perms = db.update_document(**BASE, document_id="sig1", permissions=[Permission.read(Role.any())])
    assert perms["$permissions"] == ['read("any")']
    assert perms["revision"] == 2, "a permissions-only update keeps the data"


def test_upsert_document_creates_then_replaces(db):
    created = db.upsert_document(**BASE, document_id="ups1", data={"pair": "SOLUSDT", "revision": 1})
    assert_document_shape(created, DB, COL)
    assert (created["$id"], created["revision"]) == ("ups1", 1)
    replaced = db.upsert_document(**BASE, document_id="ups1", data={"pair": "SOLUSDT", "revision": 5, "side": "short"})
    assert (replaced["$id"], replaced["revision"], replaced["side"]) == ("ups1", 5, "short")
    assert replaced["$createdAt"] == created["$createdAt"]
    assert replaced["$sequence"] == created["$sequence"]
    assert db.get_document(**BASE, document_id="ups1")["revision"] == 5

    with_perms = db.upsert_document(
        **BASE, document_id="ups2", data={"pair": "ADAUSDT"}, permissions=[Permission.read(Role.team("paid"))]
    )
    assert with_perms["$permissions"] == ['read("team:paid")']
    kept = db.upsert_document(**BASE, document_id="ups2", data={"pair": "ADAUSDT", "revision": 3})
    assert kept["$permissions"] == ['read("team:paid")'], "an upsert without permissions keeps the existing ones"
    expect_error(
        lambda: db.upsert_document(**BASE, document_id="ups3", data={"revision": 1}), 400, "document_invalid_structure"
    )
    expect_error(lambda: db.get_document(**BASE, document_id="ups3"), 404, "document_not_found")


def test_delete_document_then_404(db):
    db.create_document(**BASE, document_id="gone", data={"pair": "XRPUSDT"})
    assert_no_content(db.delete_document(**BASE, document_id="gone"))
    expect_error(lambda: db.get_document(**BASE, document_id="gone"), 404, "document_not_found")
    expect_error(lambda: db.delete_document(**BASE, document_id="gone"), 404, "document_not_found")
    expect_error(
        lambda: db.update_document(**BASE, document_id="gone", data={"revision": 1}), 404, "document_not_found"
    )


def test_duplicate_id_is_409_and_keeps_the_original(db):
    expect_error(
        lambda: db.create_document(**BASE, document_id="sig1", data={"pair": "OTHER"}), 409, "document_already_exists"
    )
    assert db.get_document(**BASE, document_id="sig1")["pair"] == "BTCUSDT"


def test_invalid_structure_is_400_and_changes_nothing(db):
    cases = [
        ("unknown attribute", {"pair": "A", "nope": 1}),
        ("wrong type (string for integer)", {"pair": "A", "revision": "three"}),
        ("wrong type (integer for string)", {"pair": 123}),
        ("too-long string", {"pair": "X" * 17}),
        ("integer above max", {"pair": "A", "revision": 1001}),
        ("value not in enum", {"pair": "A", "side": "sideways"}),
        ("missing required attribute", {"content": "no pair"}),
        ("scalar for array", {"pair": "A", "targets": 1.5}),
        ("bad datetime", {"pair": "A", "postedAt": "yesterday"}),
    ]
    for n, (what, data) in enumerate(cases):
        doc_id = f"bad{n}"
        try:
            expect_error(lambda: db.create_document(**BASE, document_id=doc_id, data=data), 400, "document_invalid_structure")
        except AssertionError as err:
            raise AssertionError(f"{what}: {err}") from None
        expect_error(lambda: db.get_document(**BASE, document_id=doc_id), 404, "document_not_found")

    before = db.get_document(**BASE, document_id="sig1")
    for what, data in [("unknown attribute", {"nope": 1}), ("wrong type", {"revision": "three"}), ("too long", {"pair": "X" * 17})]:
        try:
            expect_error(lambda: db.update_document(**BASE, document_id="sig1", data=data), 400, "document_invalid_structure")
        except AssertionError as err:
            raise AssertionError(f"update with {what}: {err}") from None
    assert db.get_document(**BASE, document_id="sig1") == before, "bad updates changed nothing"


def test_bad_ids_and_unknown_collection_or_database(db):
    expect_error(lambda: db.create_document(**BASE, document_id="_leading", data={"pair": "A"}), 400, "general_argument_invalid")
    expect_error(lambda: db.create_document(**BASE, document_id="x" * 37, data={"pair": "A"}), 400, "general_argument_invalid")
    expect_error(lambda: db.list_documents(database_id=DB, collection_id="nope"), 404, "collection_not_found")
    expect_error(lambda: db.list_documents(database_id="nope", collection_id=COL), 404, "database_not_found")
    expect_error(
        lambda: db.create_document(database_id=DB, collection_id="nope", document_id="a", data={"pair": "A"}),
        404,
        "collection_not_found",
    )


def test_get_document_with_an_invalid_id_is_400(db):
    expect_error(lambda: db.get_document(**BASE, document_id="_leading"), 400, "general_argument_invalid")
    expect_error(lambda: db.get_document(**BASE, document_id="x" * 37), 400, "general_argument_invalid")


# ---- queries ----


def test_list_without_queries_every_document_in_insertion_order(db, q):
    listed = q()
    assert listed["total"] == 6
    assert ids(listed) == ["q1", "q2", "q3", "q4", "q5", "q6"]
    for d in listed["documents"]:
        assert_document_shape(d, DB, Q)


def test_comparison_queries(q):
    assert ids(q(Query.equal("name", "beta"))) == ["q2"]
    assert ids(q(Query.equal("name", ["beta", "gamma"]))) == ["q2", "q4"], "equal with several values is IN"
    assert ids(q(Query.equal("n", 3))) == ["q3"]
    assert ids(q(Query.not_equal("name", "beta"))) == ["q1", "q3", "q4", "q5", "q6"]
    assert ids(q(Query.less_than("n", 3))) == ["q1", "q2"]
    assert ids(q(Query.less_than_equal("n", 3))) == ["q1", "q2", "q3"]
    assert ids(q(Query.greater_than("price", 4.5))) == ["q5", "q6"]
    assert ids(q(Query.greater_than_equal("price", 4.5))) == ["q4", "q5", "q6"]
    assert ids(q(Query.between("n", 2, 4))) == ["q2", "q3", "q4"], "between is inclusive"
    assert ids(q(Query.greater_than("at", "2024-01-04T00:00:00.000+00:00"))) == ["q5", "q6"]
    assert ids(q(Query.less_than("n", 5), Query.greater_than("n", 2))) == ["q3", "q4"], "queries are ANDed"


def test_null_prefix_contains_and_search_queries(q):
    assert ids(q(Query.is_null("note"))) == ["q1", "q3", "q6"]
    assert ids(q(Query.is_not_null("note"))) == ["q2", "q4", "q5"]
    assert ids(q(Query.starts_with("name", "alpha"))) == ["q1", "q3"]
    assert ids(q(Query.contains("tags", "vip"))) == ["q1", "q4"], "contains on a string array"
    assert ids(q(Query.contains("tags", ["eth", "btc"]))) == ["q1", "q2", "q5"], "contains any of several"
    assert ids(q(Query.contains("name", "lph"))) == ["q1", "q3"], "contains on a string is a substring match"
    assert ids(q(Query.search("body", "bitcoin"))) == ["q1", "q4"]


def test_ordering_limit_offset_total(q):
    assert ids(q(Query.order_desc("n"))) == ["q6", "q5", "q4", "q3", "q2", "q1"]
    assert ids(q(Query.order_asc("name"))) == ["q1", "q3", "q2", "q5", "q6", "q4"]
    page = q(Query.order_asc("n"), Query.limit(2), Query.offset(2))
    assert ids(page) == ["q3", "q4"]
    assert page["total"] == 6, "total ignores limit/offset"
    filtered = q(Query.greater_than("n", 1), Query.limit(1))
    assert (filtered["total"], len(filtered["documents"])) == (5, 1)
    assert len(ids(q(Query.order_desc("$createdAt"), Query.limit(1)))) == 1
    assert ids(q(Query.order_desc("$sequence"), Query.limit(2))) == ["q6", "q5"]


def test_cursor_paging(q):
    assert ids(q(Query.order_asc("n"), Query.cursor_after("q2"), Query.limit(2))) == ["q3", "q4"]
    assert ids(q(Query.order_asc("n"), Query.cursor_before("q5"), Query.limit(2))) == ["q3", "q4"]
    assert ids(q(Query.order_desc("n"), Query.cursor_after("q5"), Query.limit(2))) == ["q4", "q3"]
    assert ids(q(Query.cursor_after("q4"))) == ["q5", "q6"], "default order is insertion order"
    assert ids(q(Query.cursor_after("q6"))) == []
    expect_error(lambda: q(Query.cursor_after("missing")), 400, "general_cursor_not_found")


def test_cursor_on_a_null_order_attribute_is_400(q):
    expect_error(lambda: q(Query.order_asc("note"), Query.cursor_after("q1")), 400, "database_query_order_null")


def test_select_returns_only_the_chosen_attributes(q):
    res = q(Query.select(["name", "n"]), Query.equal("n", 2))
    [doc] = res["documents"]
    assert (doc["name"], doc["n"]) == ("beta", 2)
    assert "price" not in doc and "body" not in doc


def test_invalid_queries_are_400(q):
    expect_error(lambda: q(Query.equal("nope", "x")), 400, "general_query_invalid")
    expect_error(lambda: q("not json at all"), 400, "general_query_invalid")
    expect_error(lambda: q(json.dumps({"method": "frobnicate", "attribute": "n", "values": [1]})), 400, "general_query_invalid")
    expect_error(lambda: q(Query.limit(-1)), 400, "general_query_invalid")
    expect_error(lambda: q(Query.order_asc("nope")), 400, "general_query_invalid")


def test_document_dates_use_appwrite_format(db):
    d = db.get_document(**QBASE, document_id="q1")
    assert_date(d["at"], "at")
    assert d["at"] == "2024-01-01T00:00:00.000+00:00"


def test_or_and_queries(q):
    assert ids(q(Query.or_queries([Query.equal("n", 1), Query.equal("n", 6)]))) == ["q1", "q6"]
    assert ids(q(Query.and_queries([Query.greater_than("n", 1), Query.less_than("n", 3)]))) == ["q2"]


def test_default_page_is_25(db):
    mbase = {"database_id": DB, "collection_id": "many"}
    db.create_collection(**mbase, name="Many")
    db.create_integer_attribute(**mbase, key="i", required=True)
    wait_all(db, "many")
    for i in range(30):
        db.create_document(**mbase, document_id=f"m{i:02d}", data={"i": i})
    page = db.list_documents(**mbase)
    assert len(page["documents"]) == 25, "default limit is 25"
    assert page["total"] == 30
    assert len(db.list_documents(**mbase, queries=[Query.limit(100)])["documents"]) == 30
    rest = db.list_documents(**mbase, queries=[Query.cursor_after(page["documents"][24]["$id"])])
    assert [d["i"] for d in rest["documents"]] == [25, 26, 27, 28, 29]


def test_system_attributes_are_queryable(db, q):
    assert ids(q(Query.equal("$id", ["q2", "q4"]))) == ["q2", "q4"]
    assert ids(q(Query.order_desc("$createdAt"), Query.limit(2))) == ["q6", "q5"]
    before = db.get_document(**QBASE, document_id="q3")
    updated = db.update_document(**QBASE, document_id="q3", data={"note": "w"})
    assert updated["$updatedAt"] > before["$updatedAt"], "$updatedAt moves forward"
    since = q(Query.updated_after(before["$updatedAt"]), Query.order_asc("$updatedAt"))
    assert "q3" in ids(since), "the updated document is found by updatedAfter(previous $updatedAt)"
    assert all(d["$updatedAt"] > before["$updatedAt"] for d in since["documents"])
    assert ids(q(Query.order_desc("$updatedAt"), Query.limit(1)))[0] == "q3"
    assert ids(q(Query.greater_than("$updatedAt", updated["$updatedAt"]))) == []


def test_get_document_with_select_queries(db):
    doc = db.get_document(**QBASE, document_id="q2", queries=[Query.select(["name"])])
    assert doc["name"] == "beta"
    assert "price" not in doc

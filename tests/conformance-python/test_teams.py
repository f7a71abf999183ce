"""Teams and memberships (server key), and team-based read permissions seen by a session user,
through the Python SDK (appwrite 15.3.0, Appwrite 1.8.x). Mirrors tests/conformance/teams.test.mjs."""

import pytest
from appwrite.permission import Permission
from appwrite.query import Query
from appwrite.role import Role
from appwrite.services.account import Account
from appwrite.services.databases import Databases
from appwrite.services.teams import Teams
from appwrite.services.users import Users

from conftest import assert_date, assert_no_content, expect_error, poll

PASSWORD = "correct-horse-1"
state = {}


@pytest.fixture(scope="module")
def users(emu):
    u = Users(emu.key_client())
    u.create(user_id="frank", email="frank@example.com", password=PASSWORD, name="Frank")
    u.create(user_id="gina", email="gina@example.com", password=PASSWORD, name="Gina")
    return u


@pytest.fixture(scope="module")
def teams(emu, users):
    return Teams(emu.key_client())


def wait_attribute(db, database_id, collection_id, key):
    poll(
        lambda: db.get_attribute(database_id=database_id, collection_id=collection_id, key=key)["status"]
        == "available",
        f"{key} attribute",
    )


def test_create_and_get_return_the_team_model(teams):
    t = teams.create(team_id="paid", name="Paid")
    assert (t["$id"], t["name"], t["total"]) == ("paid", "Paid", 0)
    assert t["prefs"] == {}
    assert_date(t["$createdAt"], "$createdAt")
    got = teams.get(team_id="paid")
    assert (got["$id"], got["name"]) == ("paid", "Paid")
    expect_error(lambda: teams.get(team_id="nope"), 404, "team_not_found")
    expect_error(lambda: teams.create(team_id="paid", name="again"), 409, "team_already_exists")
    assert teams.get(team_id="paid")["name"] == "Paid"


def test_create_membership_with_the_key_is_confirmed_at_once(teams):
    m = teams.create_membership(team_id="paid", roles=["member"], user_id="frank")
    assert (m["teamId"], m["teamName"], m["userId"], m["userName"]) == ("paid", "Paid", "frank", "Frank")
    assert m["userEmail"] == "frank@example.com"
    assert m["confirm"] is True
    assert m["roles"] == ["member"]
    assert_date(m["joined"], "joined")
    assert_date(m["invited"], "invited")
    assert isinstance(m["mfa"], bool)
    assert teams.get(team_id="paid")["total"] == 1, "team total counts the member"


def test_duplicate_membership_is_409_and_adds_nothing(teams):
    expect_error(lambda: teams.create_membership(team_id="paid", roles=[], user_id="frank"), 409, "team_invite_already_exists")
    assert teams.list_memberships(team_id="paid")["total"] == 1
    assert teams.get(team_id="paid")["total"] == 1


def test_create_membership_errors(teams):
    expect_error(lambda: teams.create_membership(team_id="nope", roles=[], user_id="frank"), 404, "team_not_found")
    expect_error(lambda: teams.create_membership(team_id="paid", roles=[], user_id="nobody"), 404, "user_not_found")
    assert teams.list_memberships(team_id="paid")["total"] == 1


def test_list_memberships_filters_by_user_id(teams):
    teams.create_membership(team_id="paid", roles=[], user_id="gina")
    assert teams.list_memberships(team_id="paid")["total"] == 2
    only = teams.list_memberships(team_id="paid", queries=[Query.equal("userId", "gina")])
    assert only["total"] == 1
    assert only["memberships"][0]["userId"] == "gina"
    none = teams.list_memberships(team_id="paid", queries=[Query.equal("userId", "nobody")])
    assert none == {"total": 0, "memberships": []}
    expect_error(lambda: teams.list_memberships(team_id="nope"), 404, "team_not_found")


def test_delete_membership_second_delete_404(teams):
    [m] = teams.list_memberships(team_id="paid", queries=[Query.equal("userId", "gina")])["memberships"]
    assert_no_content(teams.delete_membership(team_id="paid", membership_id=m["$id"]))
    assert teams.list_memberships(team_id="paid", queries=[Query.equal("userId", "gina")])["total"] == 0
    assert teams.get(team_id="paid")["total"] == 1
    expect_error(lambda: teams.delete_membership(team_id="paid", membership_id=m["$id"]), 404, "membership_not_found")


def test_team_readable_collection_visible_only_while_a_member(emu, users, teams):
    db = Databases(emu.key_client())
    db.create(database_id="g3", name="G3")
    db.create_collection(
        database_id="g3",
        collection_id="signals",
        name="Signals",
        permissions=[Permission.read(Role.team("paid")), Permission.read(Role.team("staff"))],
        document_security=False,
    )
    db.create_string_attribute(database_id="g3", collection_id="signals", key="pair", size=16, required=True)
    wait_attribute(db, "g3", "signals", "pair")
    db.create_document(database_id="g3", collection_id="signals", document_id="s1", data={"pair": "BTCUSDT"})

    users.create(user_id="hana", email="hana@example.com", password=PASSWORD)
    session = Account(emu.key_client()).create_email_password_session(email="hana@example.com", password=PASSWORD)
    as_hana = Databases(emu.session_client(session["secret"]))
    target = {"database_id": "g3", "collection_id": "signals"}

    expect_error(lambda: as_hana.list_documents(**target), 401, "user_unauthorized")
    expect_error(lambda: Databases(emu.guest_client()).list_documents(**target), 401, "user_unauthorized")

    m = teams.create_membership(team_id="paid", roles=[], user_id="hana")
    listed = as_hana.list_documents(**target)
    assert [d["$id"] for d in listed["documents"]] == ["s1"]
    assert listed["total"] == 1
    assert as_hana.get_document(**target, document_id="s1")["pair"] == "BTCUSDT"

    expect_error(
        lambda: as_hana.create_document(**target, document_id="s2", data={"pair": "ETHUSDT"}), 401, "user_unauthorized"
    )
    expect_error(lambda: db.get_document(**target, document_id="s2"), 404, "document_not_found")

    teams.delete_membership(team_id="paid", membership_id=m["$id"])
    expect_error(lambda: as_hana.list_documents(**target), 401, "user_unauthorized")
    state["hana"] = session["secret"]


def test_get_document_the_user_cannot_read_is_404(emu):
    assert state.get("hana"), "needs the previous test"
    target = {"database_id": "g3", "collection_id": "signals", "document_id": "s1"}
    expect_error(lambda: Databases(emu.session_client(state["hana"])).get_document(**target), 404, "document_not_found")
    expect_error(lambda: Databases(emu.guest_client()).get_document(**target), 404, "document_not_found")


def test_document_security_user_sees_only_granted_documents(emu, users):
    db = Databases(emu.key_client())
    db.create_collection(database_id="g3", collection_id="links", name="Links", permissions=[], document_security=True)
    db.create_string_attribute(database_id="g3", collection_id="links", key="v", size=16, required=False)
    wait_attribute(db, "g3", "links", "v")
    target = {"database_id": "g3", "collection_id": "links"}
    db.create_document(**target, document_id="mine", data={"v": "a"}, permissions=[Permission.read(Role.user("frank"))])
    db.create_document(**target, document_id="theirs", data={"v": "b"}, permissions=[Permission.read(Role.user("gina"))])
    db.create_document(**target, document_id="admins", data={"v": "c"}, permissions=[Permission.read(Role.label("admin"))])

    s = Account(emu.key_client()).create_email_password_session(email="frank@example.com", password=PASSWORD)
    as_frank = Databases(emu.session_client(s["secret"]))
    seen = as_frank.list_documents(**target)
    assert [d["$id"] for d in seen["documents"]] == ["mine"]
    assert seen["total"] == 1, "total counts only readable documents"
    expect_error(lambda: as_frank.get_document(**target, document_id="theirs"), 404, "document_not_found")

    users.update_labels(user_id="frank", labels=["admin"])
    assert [d["$id"] for d in as_frank.list_documents(**target)["documents"]] == ["mine", "admins"]


def test_document_created_by_a_user_without_permissions_gets_theirs(emu, users):
    db = Databases(emu.key_client())
    db.create_collection(
        database_id="g3",
        collection_id="notes",
        name="Notes",
        permissions=[Permission.create(Role.users())],
        document_security=True,
    )
    db.create_string_attribute(database_id="g3", collection_id="notes", key="v", size=16, required=False)
    wait_attribute(db, "g3", "notes", "v")
    s = Account(emu.key_client()).create_email_password_session(email="gina@example.com", password=PASSWORD)
    as_gina = Databases(emu.session_client(s["secret"]))
    doc = as_gina.create_document(database_id="g3", collection_id="notes", document_id="n1", data={"v": "x"})
    assert doc["$permissions"] == ['read("user:gina")', 'update("user:gina")', 'delete("user:gina")']
    assert as_gina.get_document(database_id="g3", collection_id="notes", document_id="n1")["v"] == "x"
    expect_error(
        lambda: as_gina.create_document(
            database_id="g3",
            collection_id="notes",
            document_id="n2",
            data={"v": "y"},
            permissions=[Permission.read(Role.user("frank"))],
        ),
        401,
        "user_unauthorized",
    )


def test_deleting_a_user_removes_their_memberships(users, teams):
    users.create(user_id="kai", email="kai@example.com")
    teams.create_membership(team_id="paid", roles=[], user_id="kai")
    by_kai = [Query.equal("userId", "kai")]
    assert teams.list_memberships(team_id="paid", queries=by_kai)["total"] == 1
    users.delete(user_id="kai")
    poll(
        lambda: teams.list_memberships(team_id="paid", queries=by_kai)["total"] == 0,
        "the deleted user's membership to disappear",
    )


def test_delete_team(teams):
    teams.create(team_id="temp", name="Temp")
    assert_no_content(teams.delete(team_id="temp"))
    expect_error(lambda: teams.get(team_id="temp"), 404, "team_not_found")

"""Users (server key) and the auth-header errors, through the Python SDK (appwrite 15.3.0,
Appwrite 1.8.x). Mirrors tests/conformance/users.test.mjs."""

import re

import pytest
from appwrite.client import Client
from appwrite.id import ID
from appwrite.query import Query
from appwrite.services.account import Account
from appwrite.services.databases import Databases
from appwrite.services.teams import Teams
from appwrite.services.users import Users

from conftest import assert_date, assert_no_content, expect_error, uniq

ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,35}$")


@pytest.fixture(scope="module")
def users(emu):
    return Users(emu.key_client())


def test_create_returns_the_user_model_email_lower_cased(users):
    u = users.create(user_id="alice", email="Alice@Example.COM", password="correct-horse-1", name="Alice")
    assert u["$id"] == "alice"
    assert u["email"] == "alice@example.com"
    assert u["name"] == "Alice"
    assert u["status"] is True
    assert u["emailVerification"] is False
    assert u["phoneVerification"] is False
    assert u["phone"] == ""
    assert u["mfa"] is False
    assert u["labels"] == []
    assert u["prefs"] == {}
    assert isinstance(u["targets"], list)
    assert_date(u["$createdAt"], "$createdAt")
    assert_date(u["registration"], "registration")
    assert_date(u["passwordUpdate"], "passwordUpdate (a password was set)")
    assert isinstance(u["accessedAt"], str)


def test_create_with_unique_id_and_without_password(users):
    u = users.create(user_id=ID.unique(), email="nopass@example.com")
    assert ID_RE.match(u["$id"])
    assert u["passwordUpdate"] == "", "no password: passwordUpdate is empty"
    assert u["name"] == ""
    # The SDK makes ids on the client; the server's own `unique()` works too.
    v = users.create(user_id="unique()", email="server-id@example.com")
    assert ID_RE.match(v["$id"]) and v["$id"] != "unique()"


def test_create_conflicts_are_409_user_already_exists(users):
    expect_error(lambda: users.create(user_id="alice", email="other@example.com"), 409, "user_already_exists")
    expect_error(lambda: users.create(user_id="alice2", email="ALICE@example.com"), 409, "user_already_exists")
    expect_error(lambda: users.get(user_id="alice2"), 404, "user_not_found")
    assert users.get(user_id="alice")["email"] == "alice@example.com"


def test_create_with_bad_input_is_400_and_creates_nothing(users):
    before = users.list()["total"]
    expect_error(lambda: users.create(user_id="_bad", email="bad1@example.com"), 400, "general_argument_invalid")
    expect_error(lambda: users.create(user_id="x" * 37, email="bad2@example.com"), 400, "general_argument_invalid")
    expect_error(lambda: users.create(user_id="bad3", email="not-an-email"), 400, "general_argument_invalid")
    expect_error(
        lambda: users.create(user_id="bad4", email="bad4@example.com", password="short"),
        400,
        "general_argument_invalid",
    )
    assert users.list()["total"] == before, "no user was created"


def test_get_and_404_user_not_found(users):
    u = users.get(user_id="alice")
    assert u["$id"] == "alice"
    assert u["email"] == "alice@example.com"
    expect_error(lambda: users.get(user_id="nobody"), 404, "user_not_found")


def test_list_with_equal_email_limit_and_cursor(users):
    found = users.list(queries=[Query.equal("email", "alice@example.com")])
    assert found["total"] == 1
    assert [u["$id"] for u in found["users"]] == ["alice"]
    assert users.list(queries=[Query.equal("email", "nobody@example.com")]) == {"total": 0, "users": []}

    users.create(user_id="bob", email="bob@example.com", name="Bob")
    total = users.list()["total"]
    assert total == 4
    page = users.list(queries=[Query.limit(1)])
    assert len(page["users"]) == 1
    assert page["total"] == total, "total ignores limit"
    rest = users.list(queries=[Query.cursor_after(page["users"][0]["$id"]), Query.limit(100)])
    assert len(rest["users"]) == total - 1
    assert page["users"][0]["$id"] not in [u["$id"] for u in rest["users"]]
    expect_error(lambda: users.list(queries=[Query.equal("nope", "x")]), 400, "general_query_invalid")


def test_update_prefs_replaces_prefs(users):
    assert users.update_prefs(user_id="alice", prefs={"theme": "dark", "n": 2}) == {"theme": "dark", "n": 2}
    assert users.get_prefs(user_id="alice") == {"theme": "dark", "n": 2}
    users.update_prefs(user_id="alice", prefs={"lang": "en"})
    assert users.get_prefs(user_id="alice") == {"lang": "en"}, "prefs are replaced, not merged"
    assert users.get(user_id="alice")["prefs"] == {"lang": "en"}
    expect_error(lambda: users.get_prefs(user_id="nobody"), 404, "user_not_found")


def test_update_labels(users):
    u = users.update_labels(user_id="alice", labels=["admin", "vip"])
    assert u["labels"] == ["admin", "vip"]
    assert users.get(user_id="alice")["labels"] == ["admin", "vip"]
    expect_error(lambda: users.update_labels(user_id="alice", labels=["not valid!"]), 400, "general_argument_invalid")
    assert users.get(user_id="alice")["labels"] == ["admin", "vip"]
    assert users.update_labels(user_id="bob", labels=[])["labels"] == []


def test_update_email_verification(users):
    assert users.update_email_verification(user_id="alice", email_verification=True)["emailVerification"] is True
    assert users.get(user_id="alice")["emailVerification"] is True
    assert users.update_email_verification(user_id="alice", email_verification=False)["emailVerification"] is False
    expect_error(
        lambda: users.update_email_verification(user_id="nobody", email_verification=True), 404, "user_not_found"
    )


def test_list_memberships(emu, users):
    teams = Teams(emu.key_client())
    teams.create(team_id="paid", name="Paid")
    assert users.list_memberships(user_id="bob") == {"total": 0, "memberships": []}
    teams.create_membership(team_id="paid", roles=[], user_id="bob")
    listed = users.list_memberships(user_id="bob")
    assert listed["total"] == 1
    m = listed["memberships"][0]
    assert (m["teamId"], m["userId"], m["confirm"]) == ("paid", "bob", True)
    expect_error(lambda: users.list_memberships(user_id="nobody"), 404, "user_not_found")


def test_delete_removes_the_user_second_delete_404(users):
    users.create(user_id="carol", email="carol@example.com")
    assert_no_content(users.delete(user_id="carol"))
    expect_error(lambda: users.get(user_id="carol"), 404, "user_not_found")
    expect_error(lambda: users.delete(user_id="carol"), 404, "user_not_found")
    assert users.create(user_id="carol", email="carol@example.com")["$id"] == "carol", "id and email are free again"


# ---- auth headers ----


def test_guest_on_users_is_401_general_unauthorized_scope(emu):
    expect_error(lambda: Users(emu.guest_client()).list(), 401, "general_unauthorized_scope")
    expect_error(lambda: Users(emu.guest_client()).get(user_id="alice"), 401, "general_unauthorized_scope")
    expect_error(
        lambda: Databases(emu.guest_client()).create(database_id="x", name="x"), 401, "general_unauthorized_scope"
    )


def test_signed_in_user_on_users_is_401(emu):
    s = Account(emu.key_client()).create_email_password_session(email="alice@example.com", password="correct-horse-1")
    expect_error(lambda: Users(emu.session_client(s["secret"])).list(), 401, "general_unauthorized_scope")


def test_key_and_session_in_one_request_is_403(emu):
    s = Account(emu.key_client()).create_email_password_session(email="alice@example.com", password="correct-horse-1")
    both = emu.key_client().set_session(s["secret"])
    expect_error(lambda: Users(both).list(), 403, "user_key_and_session_set")
    expect_error(lambda: Account(both).get(), 403, "user_key_and_session_set")


def test_unknown_project_is_404_project_not_found(emu):
    client = Client().set_endpoint(emu.endpoint).set_project("no-such-project").set_key(emu.key)
    expect_error(lambda: Users(client).list(), 404, "project_not_found")


def test_wrong_api_key_is_401(emu):
    client = Client().set_endpoint(emu.endpoint).set_project(emu.project).set_key("wrong-key")
    expect_error(lambda: Users(client).list(), 401, "user_unauthorized")


def test_total_false_as_python_spells_it_is_refused_like_appwrite(users):
    """The SDK puts `total=False` in the query string; Appwrite's loose boolean takes only
    true/false/1/0, so this is 400 there. `Query`-free lists still count by default."""
    expect_error(lambda: users.list(total=False), 400, "general_argument_invalid")
    expect_error(lambda: users.list(total=True), 400, "general_argument_invalid")
    assert users.list()["total"] > 0


def test_a_method_the_route_lacks_is_404_route_not_found(emu):
    """An SDK call the emulator cannot route is an AppwriteException, not a KeyError."""
    err = expect_error(lambda: emu.key_client().call("put", "/users", {}, {}), 404, "general_route_not_found")
    assert "PUT /v1/users" in err.message


def test_emails_are_stored_and_found_lower_case(users):
    email = f"{uniq('MiXeD')}@Example.Org"
    u = users.create(user_id=ID.unique(), email=email)
    assert u["email"] == email.lower()
    found = users.list(queries=[Query.equal("email", email.lower())])
    assert [x["$id"] for x in found["users"]] == [u["$id"]]

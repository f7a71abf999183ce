"""Account with server-side sessions, email verification, email one-time codes and password
recovery, through the Python SDK (appwrite 15.3.0, Appwrite 1.8.x). Mail is read from the
emulator's mailbox. Mirrors tests/conformance/account.test.mjs."""

import re
from datetime import datetime, timezone

import pytest
from appwrite.id import ID
from appwrite.services.account import Account
from appwrite.services.users import Users

from conftest import assert_date, assert_no_content, expect_error

EMAIL = "dana@example.com"
PASSWORD = "correct-horse-1"


@pytest.fixture(scope="module")
def users(emu):
    u = Users(emu.key_client())
    u.create(user_id="dana", email=EMAIL, password=PASSWORD, name="Dana")
    return u


@pytest.fixture(scope="module")
def key_account(emu, users):
    return Account(emu.key_client())


def assert_session(s, user_id):
    assert isinstance(s["$id"], str)
    assert s["userId"] == user_id
    assert_date(s["$createdAt"], "$createdAt")
    assert_date(s["expire"], "expire")
    assert datetime.fromisoformat(s["expire"]) > datetime.now(timezone.utc), "expire is in the future"
    assert isinstance(s["secret"], str) and s["secret"], "a session created with the key carries its secret"
    assert isinstance(s["factors"], list)
    assert isinstance(s["current"], bool)
    for k in ["provider", "providerUid", "ip", "osCode", "clientName", "countryCode", "mfaUpdatedAt"]:
        assert isinstance(s[k], str), f"session.{k} is a string"


def test_email_password_session_with_the_key_carries_its_secret(key_account):
    s = key_account.create_email_password_session(email=EMAIL, password=PASSWORD)
    assert_session(s, "dana")
    assert s["provider"] == "email"
    assert s["providerUid"] == EMAIL
    assert s["factors"] == ["password"]


def test_session_created_without_the_key_hides_its_secret(emu, users):
    s = Account(emu.guest_client()).create_email_password_session(email=EMAIL, password=PASSWORD)
    assert s["userId"] == "dana"
    assert s["secret"] == "", "only the server key sees session secrets"


def test_email_is_matched_case_insensitively(key_account):
    assert key_account.create_email_password_session(email="DANA@Example.com", password=PASSWORD)["userId"] == "dana"


def test_wrong_password_or_unknown_email_is_401(key_account):
    expect_error(
        lambda: key_account.create_email_password_session(email=EMAIL, password="wrong-password"),
        401,
        "user_invalid_credentials",
    )
    expect_error(
        lambda: key_account.create_email_password_session(email="ghost@example.com", password=PASSWORD),
        401,
        "user_invalid_credentials",
    )


def test_session_client_reads_its_own_account(emu, key_account):
    s = key_account.create_email_password_session(email=EMAIL, password=PASSWORD)
    me = Account(emu.session_client(s["secret"])).get()
    assert (me["$id"], me["email"], me["name"]) == ("dana", EMAIL, "Dana")
    assert me["emailVerification"] is False
    assert me["prefs"] == {}
    assert not me.get("password"), "the password hash is not shown to the user"


def test_guest_or_bad_session_on_account_get_is_401(emu):
    expect_error(lambda: Account(emu.guest_client()).get(), 401, "general_unauthorized_scope")
    expect_error(lambda: Account(emu.session_client("not-a-real-secret")).get(), 401, "general_unauthorized_scope")


def test_email_verification(emu, users, key_account):
    s = key_account.create_email_password_session(email=EMAIL, password=PASSWORD)
    account = Account(emu.session_client(s["secret"]))
    mail, token = emu.expect_mail(EMAIL, lambda: account.create_verification(url="http://localhost:3000/verify"))
    assert token["userId"] == "dana"
    assert_date(token["expire"], "token.expire")
    assert isinstance(token["$id"], str)
    assert isinstance(token["phrase"], str)
    assert mail.get("data", {}).get("userId") == "dana", f"mail data: {mail}"
    secret = mail["data"]["secret"]
    assert isinstance(secret, str)

    expect_error(lambda: account.update_verification(user_id="dana", secret="wrong"), 401, "user_invalid_token")
    assert account.get()["emailVerification"] is False, "a wrong secret verifies nothing"
    assert account.update_verification(user_id="dana", secret=secret)["userId"] == "dana"
    assert account.get()["emailVerification"] is True
    assert users.get(user_id="dana")["emailVerification"] is True


def test_email_one_time_code(emu, key_account):
    mail, token = emu.expect_mail(EMAIL, lambda: key_account.create_email_token(user_id=ID.unique(), email=EMAIL))
    assert token["userId"] == "dana", "an existing email keeps its user id"
    assert_date(token["expire"], "token.expire")
    assert mail.get("data", {}).get("userId") == "dana", f"mail data: {mail}"
    code = mail["data"]["secret"]
    assert re.fullmatch(r"\d{6}", code), "the emailed secret is a 6-digit code"

    wrong = "111111" if code == "000000" else "000000"
    expect_error(lambda: key_account.create_session(user_id="dana", secret=wrong), 401, "user_invalid_token")
    s = key_account.create_session(user_id="dana", secret=code)
    assert_session(s, "dana")
    assert Account(emu.session_client(s["secret"])).get()["$id"] == "dana"
    expect_error(lambda: key_account.create_session(user_id="dana", secret=code), 401, "user_invalid_token")


def test_email_token_for_a_new_email_creates_the_user(emu, users, key_account):
    email = "newcomer@example.com"
    mail, token = emu.expect_mail(email, lambda: key_account.create_email_token(user_id="newcomer", email=email))
    assert token["userId"] == "newcomer"
    assert users.get(user_id="newcomer")["email"] == email
    assert key_account.create_session(user_id="newcomer", secret=mail["data"]["secret"])["userId"] == "newcomer"
    assert users.get(user_id="newcomer")["emailVerification"] is True, "an emailed code verifies the email"


def test_delete_current_session(emu, key_account):
    s = key_account.create_email_password_session(email=EMAIL, password=PASSWORD)
    account = Account(emu.session_client(s["secret"]))
    assert account.get()["$id"] == "dana"
    assert_no_content(account.delete_session(session_id="current"))
    expect_error(account.get, 401, "general_unauthorized_scope")
    other = key_account.create_email_password_session(email=EMAIL, password=PASSWORD)
    assert Account(emu.session_client(other["secret"])).get()["$id"] == "dana", "other sessions are unaffected"


def test_deleted_user_loses_their_session(emu, users, key_account):
    users.create(user_id="erin", email="erin@example.com", password=PASSWORD)
    s = key_account.create_email_password_session(email="erin@example.com", password=PASSWORD)
    account = Account(emu.session_client(s["secret"]))
    assert account.get()["$id"] == "erin"
    assert_no_content(users.delete(user_id="erin"))
    expect_error(account.get, 401, "general_unauthorized_scope")


def test_list_sessions_marks_current_delete_sessions_ends_all(emu, users, key_account):
    users.create(user_id="gabe", email="gabe@example.com", password=PASSWORD)
    a = key_account.create_email_password_session(email="gabe@example.com", password=PASSWORD)
    b = key_account.create_email_password_session(email="gabe@example.com", password=PASSWORD)
    as_a = Account(emu.session_client(a["secret"]))
    listed = as_a.list_sessions()
    assert listed["total"] == 2
    assert sorted(s["$id"] for s in listed["sessions"]) == sorted([a["$id"], b["$id"]])
    assert [s["$id"] for s in listed["sessions"] if s["current"]] == [a["$id"]], "only the caller is current"
    assert all(s["secret"] == "" for s in listed["sessions"]), "listed sessions do not reveal secrets"
    assert_no_content(as_a.delete_sessions())
    expect_error(as_a.get, 401, "general_unauthorized_scope")
    expect_error(Account(emu.session_client(b["secret"])).get, 401, "general_unauthorized_scope")


def test_users_list_sessions_and_delete_session(emu, users, key_account):
    a = key_account.create_email_password_session(email=EMAIL, password=PASSWORD)
    listed = users.list_sessions(user_id="dana")
    assert listed["total"] >= 1
    assert a["$id"] in [s["$id"] for s in listed["sessions"]]
    assert_no_content(users.delete_session(user_id="dana", session_id=a["$id"]))
    expect_error(Account(emu.session_client(a["secret"])).get, 401, "general_unauthorized_scope")
    expect_error(lambda: users.delete_session(user_id="dana", session_id=a["$id"]), 404, "user_session_not_found")


def test_account_update_password_needs_the_old_one(emu, users, key_account):
    users.create(user_id="hugo", email="hugo@example.com", password=PASSWORD)
    s = key_account.create_email_password_session(email="hugo@example.com", password=PASSWORD)
    account = Account(emu.session_client(s["secret"]))
    expect_error(
        lambda: account.update_password(password="brand-new-pass-1", old_password="wrong-old-pass"),
        401,
        "user_invalid_credentials",
    )
    expect_error(
        lambda: account.update_password(password="short", old_password=PASSWORD), 400, "general_argument_invalid"
    )
    key_account.create_email_password_session(email="hugo@example.com", password=PASSWORD)  # still the old one
    assert account.update_password(password="brand-new-pass-1", old_password=PASSWORD)["$id"] == "hugo"
    expect_error(
        lambda: key_account.create_email_password_session(email="hugo@example.com", password=PASSWORD),
        401,
        "user_invalid_credentials",
    )
    again = key_account.create_email_password_session(email="hugo@example.com", password="brand-new-pass-1")
    assert again["userId"] == "hugo"


def test_users_update_password(users, key_account):
    users.create(user_id="ines", email="ines@example.com", password=PASSWORD)
    assert users.update_password(user_id="ines", password="admin-set-pass-1")["$id"] == "ines"
    expect_error(
        lambda: key_account.create_email_password_session(email="ines@example.com", password=PASSWORD),
        401,
        "user_invalid_credentials",
    )
    s = key_account.create_email_password_session(email="ines@example.com", password="admin-set-pass-1")
    assert s["userId"] == "ines"
    expect_error(lambda: users.update_password(user_id="nobody", password="admin-set-pass-1"), 404, "user_not_found")


def test_password_recovery(emu, users, key_account):
    users.create(user_id="jade", email="jade@example.com", password=PASSWORD)
    mail, token = emu.expect_mail(
        "jade@example.com",
        lambda: key_account.create_recovery(email="jade@example.com", url="http://localhost:3000/reset"),
    )
    assert token["userId"] == "jade"
    assert_date(token["expire"], "token.expire")
    assert mail.get("data", {}).get("userId") == "jade", f"mail data: {mail}"
    secret = mail["data"]["secret"]
    expect_error(
        lambda: key_account.update_recovery(user_id="jade", secret="wrong", password="recovered-pass-1"),
        401,
        "user_invalid_token",
    )
    key_account.update_recovery(user_id="jade", secret=secret, password="recovered-pass-1")
    expect_error(
        lambda: key_account.create_email_password_session(email="jade@example.com", password=PASSWORD),
        401,
        "user_invalid_credentials",
    )
    s = key_account.create_email_password_session(email="jade@example.com", password="recovered-pass-1")
    assert s["userId"] == "jade"
    expect_error(
        lambda: key_account.update_recovery(user_id="jade", secret=secret, password="again-pass-123"),
        401,
        "user_invalid_token",
    )
    expect_error(
        lambda: key_account.create_recovery(email="ghost@example.com", url="http://localhost:3000/reset"),
        404,
        "user_not_found",
    )

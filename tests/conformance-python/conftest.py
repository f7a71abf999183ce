"""Shared plumbing for the Python SDK conformance tests: start the emulator binary, build
clients of Appwrite's official Python SDK (PyPI `appwrite` 15.3.0, built for Appwrite 1.8.x)
against it, read its mailbox, and assert Appwrite errors.

Each test module gets its own emulator (in memory), like each file of the Node suite in
tests/conformance. Nothing here knows how the emulator is written.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import appwrite.utils.deprecated as _sdk_deprecated
import pytest
import requests
from appwrite.client import Client
from appwrite.exception import AppwriteException


class _QuietWarnings:
    """The SDK marks the whole documents API deprecated since 1.8 (in favour of TablesDB, which
    this product does not use) and forces a DeprecationWarning on every call with
    `warnings.simplefilter('always')`, which also rewrites the global filters; this stands in for
    the `warnings` module inside that one decorator."""

    @staticmethod
    def simplefilter(*_args: Any, **_kwargs: Any) -> None:
        return None

    @staticmethod
    def warn(*_args: Any, **_kwargs: Any) -> None:
        return None


_sdk_deprecated.warnings = _QuietWarnings  # type: ignore[attr-defined]

REPO_ROOT = Path(__file__).resolve().parents[2]
APPWRITE_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
LISTENING = re.compile(r"appwrite emulator listening on (http://127\.0\.0\.1:\d+)")


class Emulator:
    """One emulator process (in memory) on a free port, with a project and a server key."""

    def __init__(self) -> None:
        raw = os.environ.get("EMULATOR_BIN")
        self.bin = (
            (REPO_ROOT / raw).resolve() if raw else REPO_ROOT / "target/debug/appwrite-emulator"
        )
        self.project = "conformance"
        self.key = "key-" + secrets.token_hex(16)
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        try:
            self.proc = subprocess.Popen(
                [str(self.bin), "--bind", "127.0.0.1:0", "--project", self.project, "--key", self.key],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                text=True,
            )
        except OSError as err:
            raise RuntimeError(
                f"cannot start {self.bin}: {err} "
                "(build it with cargo build -p appwrite-emulator --bin appwrite-emulator)"
            ) from err
        found: dict[str, str] = {}
        ready = threading.Event()

        def drain() -> None:
            # Reads stdout to the end so the emulator never blocks on a full pipe.
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                m = LISTENING.search(line)
                if m and not ready.is_set():
                    found["origin"] = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60) or "origin" not in found:
            self.proc.kill()
            raise RuntimeError(
                f"emulator did not print its address within 60s (exit {self.proc.poll()}); "
                f"stderr:\n{self.stderr()}"
            )
        self.origin = found["origin"]
        self.endpoint = f"{self.origin}/v1"

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def key_client(self) -> Client:
        """A client holding the server key."""
        return Client().set_endpoint(self.endpoint).set_project(self.project).set_key(self.key)

    def session_client(self, secret: str) -> Client:
        """A client acting as the user whose session secret this is."""
        return Client().set_endpoint(self.endpoint).set_project(self.project).set_session(secret)

    def guest_client(self) -> Client:
        """A client with a project and nothing else."""
        return Client().set_endpoint(self.endpoint).set_project(self.project)

    def mailbox(self, to: str) -> list[dict[str, Any]]:
        """Every message the mailbox holds for `to`."""
        res = requests.get(f"{self.origin}/mailbox/api/messages", params={"to": to}, timeout=10)
        assert res.status_code == 200, f"mailbox answered {res.status_code}"
        body = res.json()
        found = body if isinstance(body, list) else body.get("messages", body.get("items", []))
        assert isinstance(found, list), f"mailbox JSON has no message list: {body}"
        return found

    def expect_mail(self, to: str, action: Callable[[], Any]) -> tuple[dict[str, Any], Any]:
        """Runs `action`, then waits (bounded) for a new mail to `to`; returns (mail, result)."""
        before = {json.dumps(m, sort_keys=True) for m in self.mailbox(to)}
        result = action()

        def new_mail() -> dict[str, Any] | None:
            return next(
                (m for m in self.mailbox(to) if json.dumps(m, sort_keys=True) not in before), None
            )

        return poll(new_mail, f"a new mail to {to}"), result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


@pytest.fixture(scope="module")
def emu():
    """One emulator per test module, stopped when the module is done."""
    emulator = Emulator()
    try:
        yield emulator
    finally:
        emulator.stop()


def poll(fn: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Calls `fn` until it returns a truthy value, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = fn()
            if value:
                return value
        except Exception as err:  # noqa: BLE001 - remembered and reported on timeout
            last = err
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f": {last!r}" if last else ""))
        time.sleep(0.025)


def expect_error(fn: Callable[[], Any], code: int, kind: str) -> AppwriteException:
    """Calls `fn` and asserts it raised an AppwriteException of this HTTP code and type, and that
    the raw body is Appwrite's error shape `{message, code, type, version}`."""
    try:
        value = fn()
    except AppwriteException as err:
        caught = err
    else:
        raise AssertionError(f"expected {code} {kind}, but the call succeeded with {value!r}")
    assert (caught.code, caught.type) == (code, kind), (
        f"wrong error (message: {caught.message}; body: {caught.response})"
    )
    try:
        body = json.loads(caught.response)
    except (TypeError, ValueError):
        raise AssertionError(f"error body is not JSON: {caught.response!r}") from None
    assert isinstance(body.get("message"), str), "error.message"
    assert body.get("code") == code, "error.code equals the HTTP status"
    assert body.get("type") == kind, "error.type"
    assert isinstance(body.get("version"), str), "error.version"
    return caught


def assert_date(value: Any, what: str) -> None:
    """Appwrite's date format: ISO 8601 with milliseconds and an offset."""
    assert isinstance(value, str), f"{what} is a string"
    assert APPWRITE_DATE.match(value), f"{what} is an Appwrite date: {value!r}"


def assert_document_shape(doc: dict[str, Any], database_id: str, collection_id: str) -> None:
    """The system fields every 1.8 document carries."""
    assert isinstance(doc["$id"], str), "$id"
    assert isinstance(doc["$sequence"], int) and not isinstance(doc["$sequence"], bool), (
        "$sequence is an integer in 1.8"
    )
    assert doc["$collectionId"] == collection_id, "$collectionId"
    assert doc["$databaseId"] == database_id, "$databaseId"
    assert_date(doc["$createdAt"], "$createdAt")
    assert_date(doc["$updatedAt"], "$updatedAt")
    assert isinstance(doc["$permissions"], list), "$permissions is a list"


def assert_no_content(res: Any) -> None:
    """What the SDK returns for a 204: the empty body (bytes), not a parsed object."""
    assert res in (b"", "", {}), f"204 without a body, got {res!r}"


_counter = 0


def uniq(prefix: str) -> str:
    """A unique-enough suffix for ids and emails within one emulator."""
    global _counter
    _counter += 1
    return f"{prefix}{_counter}{secrets.token_hex(3)}"

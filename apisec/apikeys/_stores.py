"""API key store protocol, and the memory and SQLite stores.

A store keeps :class:`ApiKeyRecord`s — hashes only, never key text — and
offers five operations: ``add``, ``get`` (by id), ``find`` (by hash),
``update`` (a few fields of one record, atomically) and ``list`` (by owner).
Partial updates matter: a ``last_used_at`` touch must never undo a
concurrent revocation.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from apisec.apikeys._records import MUTABLE_FIELDS, ApiKeyRecord
from apisec.errors import ConfigurationError, StoreError

__all__ = [
    "ApiKeyStore",
    "AsyncApiKeyStore",
    "AsyncSQLiteApiKeyStore",
    "MemoryApiKeyStore",
    "SQLiteApiKeyStore",
]


@runtime_checkable
class ApiKeyStore(Protocol):
    """A synchronous API key backend."""

    def add(self, record: ApiKeyRecord) -> None: ...

    def get(self, key_id: str) -> ApiKeyRecord | None: ...

    def find(self, key_hash: str) -> ApiKeyRecord | None: ...

    def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKeyRecord | None: ...

    def list(self, owner: str) -> list[ApiKeyRecord]: ...


@runtime_checkable
class AsyncApiKeyStore(Protocol):
    """The asyncio twin of :class:`ApiKeyStore`."""

    async def add(self, record: ApiKeyRecord) -> None: ...

    async def get(self, key_id: str) -> ApiKeyRecord | None: ...

    async def find(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKeyRecord | None: ...

    async def list(self, owner: str) -> list[ApiKeyRecord]: ...


# The store calls the key flows yield (apisec._flows): one per protocol method.


@attrs.define
class Add:
    record: ApiKeyRecord

    def run(self, store: ApiKeyStore) -> None:
        store.add(self.record)

    async def arun(self, store: AsyncApiKeyStore) -> None:
        await store.add(self.record)


@attrs.define
class Get:
    key_id: str

    def run(self, store: ApiKeyStore) -> ApiKeyRecord | None:
        return store.get(self.key_id)

    async def arun(self, store: AsyncApiKeyStore) -> ApiKeyRecord | None:
        return await store.get(self.key_id)


@attrs.define
class Find:
    key_hash: str

    def run(self, store: ApiKeyStore) -> ApiKeyRecord | None:
        return store.find(self.key_hash)

    async def arun(self, store: AsyncApiKeyStore) -> ApiKeyRecord | None:
        return await store.find(self.key_hash)


@attrs.define
class Update:
    key_id: str
    changes: Mapping[str, Any]

    def run(self, store: ApiKeyStore) -> ApiKeyRecord | None:
        return store.update(self.key_id, self.changes)

    async def arun(self, store: AsyncApiKeyStore) -> ApiKeyRecord | None:
        return await store.update(self.key_id, self.changes)


@attrs.define
class ListByOwner:
    owner: str

    def run(self, store: ApiKeyStore) -> list[ApiKeyRecord]:
        return store.list(self.owner)

    async def arun(self, store: AsyncApiKeyStore) -> list[ApiKeyRecord]:
        return await store.list(self.owner)


def check_changes(changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - MUTABLE_FIELDS
    if unknown:
        raise ConfigurationError(f"fields {sorted(unknown)} cannot be updated")


class MemoryApiKeyStore:
    """The in-process reference store (thread-safe)."""

    def __init__(self) -> None:
        self._by_id: dict[str, ApiKeyRecord] = {}
        # The same records by hash, so that finding one is a single dict lookup.
        self._by_hash: dict[str, ApiKeyRecord] = {}
        self._lock = threading.Lock()
        #: ``find`` without the method call: the store half of the service's fast path.
        self.lookup: Callable[[str], ApiKeyRecord | None] = self._by_hash.get

    def add(self, record: ApiKeyRecord) -> None:
        with self._lock:
            if record.id in self._by_id or record.key_hash in self._by_hash:
                raise StoreError("duplicate API key id or hash")
            self._by_id[record.id] = record
            self._by_hash[record.key_hash] = record

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._by_id.get(key_id)

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        return self._by_hash.get(key_hash)

    def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKeyRecord | None:
        check_changes(changes)
        with self._lock:
            record = self._by_id.get(key_id)
            if record is None:
                return None
            updated = attrs.evolve(record, **changes)
            if updated.key_hash != record.key_hash:
                del self._by_hash[record.key_hash]
            self._by_hash[updated.key_hash] = updated
            self._by_id[key_id] = updated
            return updated

    def list(self, owner: str) -> list[ApiKeyRecord]:
        records = [r for r in self._by_id.values() if r.owner == owner]
        return sorted(records, key=lambda r: (r.created_at, r.id))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS apisec_api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    hint TEXT NOT NULL,
    owner TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL,
    last_used_at REAL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS apisec_api_keys_owner ON apisec_api_keys (owner, created_at);
"""
_COLUMNS = (
    "id", "key_hash", "prefix", "hint", "owner", "scopes", "created_at", "expires_at",
    "revoked_at", "last_used_at", "metadata",
)  # fmt: skip


class SQLiteApiKeyStore:
    """API keys in one SQLite file (stdlib ``sqlite3``), safe across threads and processes.

    WAL mode lets readers run beside a writer; a busy timeout waits for the
    write lock instead of failing with "database is locked". Each thread gets
    its own connection. The schema is created on first use.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(
                    self.path, timeout=self._busy_timeout, isolation_level=None
                )
                connection.row_factory = sqlite3.Row
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
                connection.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite open failed: {type(exc).__name__}") from exc
            self._local.connection = connection
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    self._run(connection, lambda c: c.executescript(_SCHEMA))
                    self._schema_ready = True
        return connection

    @staticmethod
    def _run(connection: sqlite3.Connection, operation: Any) -> Any:
        try:
            return operation(connection)
        except sqlite3.IntegrityError as exc:
            raise StoreError("duplicate API key id or hash") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite operation failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def add(self, record: ApiKeyRecord) -> None:
        row = record.to_row()
        placeholders = ", ".join("?" for _ in _COLUMNS)
        sql = f"INSERT INTO apisec_api_keys ({', '.join(_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608 - fixed column names
        self._run(self._connection(), lambda c: c.execute(sql, [row[name] for name in _COLUMNS]))

    def _one(self, sql: str, value: str) -> ApiKeyRecord | None:
        row = self._run(self._connection(), lambda c: c.execute(sql, (value,)).fetchone())
        return None if row is None else ApiKeyRecord.from_row(dict(row))

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._one("SELECT * FROM apisec_api_keys WHERE id = ?", key_id)

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        return self._one("SELECT * FROM apisec_api_keys WHERE key_hash = ?", key_hash)

    def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKeyRecord | None:
        check_changes(changes)
        if changes:
            assignments = ", ".join(f"{name} = ?" for name in changes)
            sql = f"UPDATE apisec_api_keys SET {assignments} WHERE id = ?"  # noqa: S608 - checked names
            values = [*changes.values(), key_id]
            self._run(self._connection(), lambda c: c.execute(sql, values))
        return self.get(key_id)

    def list(self, owner: str) -> list[ApiKeyRecord]:
        rows = self._run(
            self._connection(),
            lambda c: c.execute(
                "SELECT * FROM apisec_api_keys WHERE owner = ? ORDER BY created_at, id", (owner,)
            ).fetchall(),
        )
        return [ApiKeyRecord.from_row(dict(row)) for row in rows]


class AsyncSQLiteApiKeyStore:
    """:class:`SQLiteApiKeyStore` for asyncio: each call runs in a worker thread."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.sync = SQLiteApiKeyStore(path, busy_timeout=busy_timeout)

    async def add(self, record: ApiKeyRecord) -> None:
        await asyncio.to_thread(self.sync.add, record)

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        return await asyncio.to_thread(self.sync.get, key_id)

    async def find(self, key_hash: str) -> ApiKeyRecord | None:
        return await asyncio.to_thread(self.sync.find, key_hash)

    async def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKeyRecord | None:
        return await asyncio.to_thread(self.sync.update, key_id, changes)

    async def list(self, owner: str) -> list[ApiKeyRecord]:
        return await asyncio.to_thread(self.sync.list, owner)

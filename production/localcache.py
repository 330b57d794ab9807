"""One host's cache of the user rows behind tokens: no freshness query, still exact.

A token or group check needs the user's row (auth.user_row: uid, login, isadmin,
pwchanged): a database round trip on every authenticated request, 12 % of a token
GET's instructions (bench/RESULTS.md). With KIVA_LOCAL_CACHE on (one host, no
KIVA_REDIS), each process keeps the rows it read, each under the generation that a
shared counter had *before* the read:

- The generation is 8 bytes of a file that every process of this host serving this
  database maps in memory (one file per account and database, in the account's private
  runtime folder, metrics.base_directory()). Reading it is a memory load: no system call.
- A request that may have changed a user (usercache.changed_generations: a write of
  the users blueprint, or its 5xx) writes a new random generation after its commit
  and before its answer leaves (usercache.invalidate, an after-request hook). Any
  request that starts after that answer, in any process, reads another generation and
  loads the row again: a password change, demotion or deletion is seen by the very next
  request, whichever process serves it.
- A random value, never a counter: no read-modify-write, hence no lock between writers
  (two bumps at once both leave a value no entry holds). The value is one aligned 8-byte
  load or store (native struct format: a memcpy of 8 bytes), which x86-64 and arm64 never
  tear.
- A change made outside the app (psql, a restore) is seen after MAX_AGE seconds at
  most, as an unflushed shared cache's (docs/shared-cache.md). A deployment reloads the
  processes (make deploy, DB_INIT included): their rows are gone with them.

The same file holds a second generation, CHECKS, for what a password check reads
(login_row: the row with the login's and the client's throttling counts, auth.lookup):
it moves with any failed check counted or count reset (throttle.count) and any new user
(/register, POST /users), and a login row depends on both generations. Its password hash
is never kept: only a keyed digest of it (auth.PasswordChecks.digest), which is enough to
find a check already verified in the process's memo and useless to anyone else.

Several hosts must not use it (each would keep its own generation): they share Redis
(KIVA_REDIS), which wins when both are set.
"""

import hashlib
import mmap
import os
import struct
import time
import typing
from collections.abc import Callable

GENERATION = struct.Struct("@Q")  # native: one aligned 8-byte load or store
USERS, CHECKS = 0, 1  # the generations of the file: any user changed; a password check's counts
WORDS = 2
MAX_AGE = 30.0  # seconds a row is trusted whatever the generation says (changes outside the app)
MAX_ROWS = 10_000  # rows kept per process; beyond, the cache starts again empty


def generation_path(folder: str, conn: str) -> str:
    """The generation file of this database (its connection string) in this folder."""
    return os.path.join(folder, f"users-generation-{hashlib.sha256(conn.encode()).hexdigest()[:16]}")


class LocalCache:
    """This process's rows, and the host's shared generation of the users."""

    def __init__(self, path: str):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            if os.fstat(fd).st_size < WORDS * GENERATION.size:  # new (or one word): zeros, generations like any other
                os.ftruncate(fd, WORDS * GENERATION.size)
            self.shared = mmap.mmap(fd, WORDS * GENERATION.size)  # the mapping outlives the descriptor
        finally:
            os.close(fd)
        self.rows: dict[str, tuple[int, float, dict]] = {}  # login: (generation, loaded at, row)
        # (login, client): ((USERS, CHECKS) generations, loaded at, row)
        self.logins: dict[tuple[str, str], tuple[tuple[int, int], float, dict]] = {}

    def generation(self, word: int = USERS) -> int:
        return GENERATION.unpack_from(self.shared, word * GENERATION.size)[0]

    def bump(self, word: int = USERS):
        GENERATION.pack_into(self.shared, word * GENERATION.size, int.from_bytes(os.urandom(GENERATION.size), "little"))

    def user_row(self, login: str, load: Callable[[], dict | None]) -> dict | None:
        """The row of login, from this process's memory if no user changed since it was
        read (and it is younger than MAX_AGE), else load()ed; None (no such user) is not kept."""
        return kept(self.rows, login, self.generation(), load, lambda row: row)

    def login_row(self, login: str, client: str, load: Callable[[], dict], keep: Callable[[dict], dict | None]) -> dict:
        """What a password check of login from client reads, from this process's memory if
        no user and no throttling count changed since it was read (and it is younger than
        MAX_AGE), else load()ed; keep(row) is what may be kept of it (None: nothing).
        An unknown login's row is kept like a known one's: the time a check takes must not
        tell whether the login exists."""
        generations = (self.generation(USERS), self.generation(CHECKS))
        return kept(self.logins, (login, client), generations, load, keep)


def kept(rows: dict, key, generation, load: Callable, keep: Callable) -> typing.Any:
    """rows[key]'s row (a copy) if it was read under this generation less than MAX_AGE
    ago, else load()ed and, if keep() says so, kept (at most MAX_ROWS rows)."""
    now = time.monotonic()  # the generation was read before the load
    entry = rows.get(key)
    if entry is not None and entry[0] == generation and now - entry[1] <= MAX_AGE:
        return dict(entry[2])  # a copy: the caller's changes stay the caller's
    row = load()
    kept_row = keep(row)
    if kept_row:
        if len(rows) >= MAX_ROWS:
            rows.clear()
        rows[key] = (generation, now, dict(kept_row))  # a copy: the caller may change its own
    return row

"""The point-in-time recovery drill (make test-pitr): PostgreSQL with production durability
(fsync on) archiving its WAL with pgBackRest, a full base backup, writes through the
API, an accidental `DELETE FROM Thing` at time T, more writes, then a recovery into a
scratch cluster to T (recovery_target_time, just before the DELETE committed): every
thing must be back, and nothing written after T be there.

    python drills/pitr_drill.py PG_PORT SCRATCH_PORT APP_PORT ROWS

Figures: rows, base backup size and time, recovery point (how far before T the last
transaction replayed is) and recovery time (pgBackRest's restore, then the replay of
the WAL up to T, until the scratch cluster accepts writes).
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import aiosql
import psycopg
from drill import ROOT, Api, Server, run
from upgrade import fill

sys.path.insert(0, ROOT)
from production import migrate  # noqa: E402

AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
PG_BIN = sorted(
    (os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")),
    key=lambda p: int(p.split("/")[-2]),
)[-1]
STANZA = "kiva"
QUERIES = aiosql.from_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pitr.sql"), "psycopg")


def as_postgres(*command: str) -> str:
    return run(*AS_POSTGRES, *command)


def query(conn: str, name: str, **params):
    """One statement of the drill itself (drills/pitr.sql: the accident, the checks)."""
    with psycopg.connect(conn, autocommit=True) as db:
        res = getattr(QUERIES, name)(db, **params)
        return list(res) if hasattr(res, "__next__") else res  # rows are read before the close


def main():
    port, scratch_port, app_port, rows = (int(a) for a in sys.argv[1:5])
    pg_dir, scratch_dir, repo = f"/tmp/kiva-pg-{port}", f"/tmp/kiva-pg-{scratch_port}", f"/tmp/kiva-pitr-{port}"
    for d in (pg_dir, scratch_dir, repo):
        if os.path.exists(f"{d}/data/postmaster.pid"):
            run("scripts/pg.sh", "stop", "immediate", env={"PG_PORT": str(port), "PG_DIR": d})
        shutil.rmtree(d, ignore_errors=True)
    # the repository holds every row and password hash: its owner's alone (issue #20)
    os.makedirs(repo, mode=0o700)
    if AS_POSTGRES:
        shutil.chown(repo, "postgres")
    config = f"{repo}/pgbackrest.conf"
    with open(config, "w") as out:  # pgBackRest's whole configuration: this drill's repository
        out.write(
            f"[global]\nrepo1-path={repo}/repo\nlog-path={repo}\nlock-path={repo}\nspool-path={repo}\n"
            f"start-fast=y\nlog-level-console=warn\ncompress-type=lz4\n\n"
            f"[{STANZA}]\npg1-path={pg_dir}/data\npg1-port={port}\npg1-socket-path={pg_dir}\npg1-user=postgres\n"
        )
    os.chmod(config, 0o600)
    if AS_POSTGRES:
        shutil.chown(config, "postgres")
    backrest = ["pgbackrest", f"--config={config}", f"--stanza={STANZA}"]
    cluster = {"PG_PORT": str(port), "PG_DIR": pg_dir, "PG_FSYNC": "on"}
    run("scripts/pg.sh", "start", env=cluster)  # initdb; then WAL archiving, which needs a restart
    run("scripts/pg.sh", "stop", env=cluster)
    with open(f"{pg_dir}/data/postgresql.conf", "a") as conf:
        conf.write(
            f"archive_mode = on\narchive_command = '{' '.join(backrest)} archive-push %p'\narchive_timeout = 60\n"
        )
    run("scripts/pg.sh", "start", env=cluster)
    server = None
    try:
        run("make", "--no-print-directory", "db-setup", f"PG_PORT={port}", f"PG_DIR={pg_dir}", "DEPLOY_DB=kiva_pitr")
        owner = f"host={pg_dir} port={port} dbname=kiva_pitr user=kiva_owner"
        runtime = f"host={pg_dir} port={port} dbname=kiva_pitr user=kiva"
        admin = f"host={pg_dir} port={port} dbname=kiva_pitr user=postgres"
        migrate.init("psycopg", owner, [os.path.join(ROOT, "data.sql")])
        fill("psycopg", owner, rows, baseline=False)
        as_postgres(*backrest, "stanza-create")
        start = time.monotonic()
        as_postgres(*backrest, "--type=full", "backup")
        backup_seconds = time.monotonic() - start
        mode = os.stat(repo).st_mode & 0o777
        assert mode == 0o700, f"the pgBackRest repository {repo} is {oct(mode)}, not 0700"
        info = json.loads(as_postgres(*backrest, "--output=json", "info"))[0]["backup"][-1]
        backup_bytes, backup_repo = info["info"]["size"], info["info"]["repository"]["delta"]
        # pgBackRest keeps the backup's stop time to the second: on a fast machine T could fall
        # in that second, and no backup would "stop before T" (restore error 75)
        time.sleep(max(0.0, info["timestamp"]["stop"] + 1.5 - time.time()))

        server = Server(app_port, {"APP_CONFIG": "pg.conf", "KIVA_DB": runtime, "APP_SECRET": "drill"})
        server.start()
        api = Api(server.url)
        oid = api.call("POST", "/owners", 201, data={"oname": "pitr-before", "omail": "before@pitr.org"})["oid"]
        before = [api.call("POST", "/things", 201, data={"tname": f"before-{i}", "oid": oid, "tprice": i})["tid"]
                  for i in range(50)]  # fmt: skip
        things = [tid for (tid,) in query(admin, "thing_ids")]
        target = query(admin, "now_text")
        time.sleep(0.2)  # T: after the last write before it, before the DELETE
        deleted = query(admin, "delete_things")
        after = [api.call("POST", "/stuff", 201, data={"stuff": f"pitr-after-{i}"})["sid"] for i in range(20)]
        api.call("POST", "/things", 201, data={"tname": "after", "oid": oid, "tprice": 1})
        as_postgres(*backrest, "check")  # a WAL switch, and its archiving awaited: T is in the archive
        server.stop()
        server = None
        print(f"pitr drill: {api.figures()}; {len(things)} things at T ({target}), {deleted} deleted after it")

        # the recovery, into a scratch cluster: pgBackRest's restore, then PostgreSQL's replay to T
        start = time.monotonic()
        os.makedirs(scratch_dir, mode=0o755)
        if AS_POSTGRES:
            shutil.chown(scratch_dir, "postgres")
        as_postgres(*backrest, f"--pg1-path={scratch_dir}/data", "--type=time", f"--target={target}",
                    "--target-action=promote", "--archive-mode=off", "restore")  # fmt: skip
        restore_seconds = time.monotonic() - start
        # the primary's max_connections (scripts/pg.sh): recovery refuses a lower one
        options = f"-p {scratch_port} -k {scratch_dir} -c listen_addresses='' -c max_connections=200"
        log = f"{scratch_dir}/server.log"
        as_postgres(
            f"{PG_BIN}/pg_ctl", "-D", f"{scratch_dir}/data", "-w", "-t", "300", "-l", log, "-o", options, "start"
        )
        scratch = f"host={scratch_dir} port={scratch_port} dbname=kiva_pitr user=postgres"
        while query(scratch, "in_recovery"):
            time.sleep(0.05)
        recovery_seconds = time.monotonic() - start
        replayed, gap = query(scratch, "last_replayed", target=target)

        recovered = [tid for (tid,) in query(scratch, "thing_ids")]
        assert recovered == things, f"{len(recovered)} things recovered, {len(things)} at T"
        assert set(before) <= set(recovered), "a write acknowledged before T is missing"
        names = {name for (name,) in query(scratch, "stuff_like", pattern="pitr-after-%")}
        assert not names, f"{len(names)} stuff written after T recovered"
        assert not list(query(scratch, "things_named", tname="after")), "a thing written after T recovered"
        total, size = query(scratch, "row_total"), query(scratch, "database_size")
        print(
            f"pitr drill: {total} rows recovered (database {size}); base backup {backup_bytes} bytes "
            f"({backup_repo} in the repository, lz4) in {backup_seconds:.1f} s; recovery to T: restore "
            f"{restore_seconds:.1f} s + WAL replay, {recovery_seconds:.1f} s in all; recovery point: the last "
            f"transaction replayed committed {float(gap):.3f} s before T ({replayed}); "
            f"{len(recovered)} things back of {len(things)}, 0 of {len(after) + 1} writes after T"
        )
    finally:
        if server:
            server.stop()
        with contextlib.suppress(SystemExit, subprocess.CalledProcessError):
            run("scripts/pg.sh", "stop", env={"PG_PORT": str(scratch_port), "PG_DIR": scratch_dir})
        run("scripts/pg.sh", "stop", env=cluster)
    for d in (pg_dir, scratch_dir, repo):
        shutil.rmtree(d, ignore_errors=True)
    print("pitr drill: passed")


if __name__ == "__main__":
    main()

"""The restore drill (make test-restore): seed data and writes through the API, a backup
(make backup), more writes and deletes, a restore (make restore) while a client keeps
reading: the database must then be exactly the backup's content (per-table row counts
and checksums) and the app must serve it, every acknowledged write of before the backup
as it was, nothing of after.

    python drills/restore_drill.py postgresql PG_PORT APP_PORT BACKUP_DIR [ROWS]   # a private cluster, fsync on
    python drills/restore_drill.py sqlite FILE APP_PORT BACKUP_DIR [ROWS]

ROWS (10000) drives the generated rows loaded first (drills/upgrade.py's fill): ~2.8 × ROWS.
"""

import os
import shutil
import sys
import time

from drill import ROOT, Api, Poller, Server, run
from upgrade import fill

sys.path.insert(0, ROOT)
from production import migrate, snapshot  # noqa: E402
from scripts import backup  # noqa: E402

PYTHON = sys.executable


def writes(api: Api, tag: str, n: int) -> dict[int, str]:
    """n stuff, n/10 owners with 5 things each: {sid: stuff}."""
    stuff = {}
    for i in range(n):
        name = f"{tag}-stuff-{i}"
        stuff[api.call("POST", "/stuff", 201, data={"stuff": name})["sid"]] = name
    for i in range(n // 10):
        oid = api.call("POST", "/owners", 201, data={"oname": f"{tag}-owner-{i}", "omail": f"o{i}@{tag}.org"})["oid"]
        for j in range(5):
            api.call("POST", "/things", 201, data={"tname": f"{tag}-thing-{j}", "oid": oid, "tprice": j + 0.5})
    return stuff


def main():
    engine, where, app_port, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    generated = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
    env = {"APP_SECRET": os.environ.get("APP_SECRET", "drill")}
    if engine == "sqlite":
        conn = admin = where
        kind = "sqlite3"
        env.update(APP_CONFIG="app.conf", KIVA_SQLITE=where)
        cluster = None
    else:  # a private cluster with production durability, the role and database of db-setup.sql
        kind = "psycopg"
        pg_dir = f"/tmp/kiva-pg-{where}"
        cluster = {"PG_PORT": where, "PG_DIR": pg_dir, "PG_FSYNC": "on"}
        run("scripts/pg.sh", "stop", "immediate", env=cluster)  # a new cluster, whatever a failed run left
        shutil.rmtree(pg_dir, ignore_errors=True)
        run("scripts/pg.sh", "start", env=cluster)
        run("make", "--no-print-directory", "db-setup", f"PG_PORT={where}", f"PG_DIR={pg_dir}", "DEPLOY_DB=kiva_drill")
        conn = f"host={pg_dir} port={where} dbname=kiva_drill user=kiva_owner"  # the schema's owner
        admin = f"host={pg_dir} port={where} dbname=kiva_drill user=postgres"  # backups: a superuser
        env.update(APP_CONFIG="pg.conf", KIVA_DB=f"host={pg_dir} port={where} dbname=kiva_drill user=kiva")
    if engine == "sqlite" and os.path.exists(where):
        os.remove(where)
    migrate.init(kind, conn, [os.path.join(ROOT, "data.sql")])
    fill(kind, conn, generated, baseline=False)
    server = Server(app_port, env)
    server.start()
    try:
        api = Api(server.url)
        before = writes(api, "before", 300)
        for sid in list(before)[:30]:  # renamed
            before[sid] = f"{before[sid]}-renamed"
            api.call("PUT", f"/stuff/{sid}", 204, data={"stuff": before[sid]})
        for sid in list(before)[30:40]:  # deleted
            api.call("DELETE", f"/stuff/{sid}", 204)
            del before[sid]
        start = time.monotonic()
        out = run(PYTHON, "-m", "scripts.backup", "backup", *(["--sqlite"] if kind == "sqlite3" else []), admin, folder)
        took = time.monotonic() - start
        manifest = backup.json.load(open(out.split("backup: ")[1].split(" (")[0] + ".json"))
        print(out.strip(), f"(the command: {took:.2f} s)")
        after = writes(api, "after", 100)
        gone = list(before)[100:150]
        for sid in gone:
            api.call("DELETE", f"/stuff/{sid}", 204)
        for sid in list(before)[150:200]:
            api.call("PUT", f"/stuff/{sid}", 204, data={"stuff": f"changed-{sid}"})
        things = [t["tid"] for t in api.call("GET", "/things?limit=100", 200)]
        for tid in things:
            api.call("DELETE", f"/things/{tid}", 204)
        print(f"restore drill ({engine}): {api.figures()} before the restore")
        assert snapshot.snapshot(kind, admin) != manifest["tables"], "the writes after the backup changed nothing?"
        poller = Poller(f"{server.url}/stuff/1")
        poller.start()
        time.sleep(0.2)
        start = time.monotonic()
        print(
            run(
                PYTHON,
                "-m",
                "scripts.backup",
                "restore",
                *(["--sqlite"] if kind == "sqlite3" else []),
                admin,
                manifest["file"],
            ).strip()
        )
        took = time.monotonic() - start
        time.sleep(1.5)  # the app's connections come back (database.py's backoff: 1 s at most)
        polled = poller.stop()
        # exactly the backup's content
        assert snapshot.snapshot(kind, admin) == manifest["tables"], "the database is not the backup's content"
        # and the app serves it: what was acknowledged before the backup, nothing after
        served = Api(server.url)
        for sid, name in before.items():
            assert served.call("GET", f"/stuff/{sid}", 200) == {"sid": sid, "stuff": name}
        for sid in after:
            served.call("GET", f"/stuff/{sid}", 404)
        for tid in things:
            assert served.call("GET", f"/things/{tid}", 200)["tid"] == tid
        rows = sum(count for count, _ in manifest["tables"].values())
        print(
            f"restore drill ({engine}): {rows} rows, backup {manifest['bytes']} bytes in {manifest['seconds']:.2f} s; "
            f"restore command {took:.2f} s; {polled['polls']} reads during the restore, {polled['failed']} failed "
            f"{polled['statuses']}, app unavailable {polled['unavailable'] * 1000:.0f} ms; "
            f"after it: {served.figures()}, "
            f"{len(before)} stuff back as backed up, {len(after)} created after it absent, "
            f"{len(gone)} stuff and {len(things)} things deleted after it back"
        )
    finally:
        server.stop()
        if cluster:
            run("scripts/pg.sh", "stop", env=cluster)
    if cluster:
        shutil.rmtree(cluster["PG_DIR"], ignore_errors=True)
    print(f"restore drill ({engine}): passed")


if __name__ == "__main__":
    main()

"""The drills' own logic, where a bug would pass a broken drill or fail a good one:
what they read of the machine, how they account for the answers they got."""

import os

import pytest
from helpers import HERE


@pytest.fixture
def cluster_drills(monkeypatch):
    """drills/cluster_drills.py, imported as the cluster's test run does (its settings,
    read at import, unused here)."""
    for name in ("CLUSTER_API", "CLUSTER_NODES", "CLUSTER_SOCKET", "CLUSTER_DIR", "CLUSTER_PG"):
        monkeypatch.setenv(name, "-")
    monkeypatch.syspath_prepend(os.path.join(HERE, "drills"))
    import cluster_drills

    return cluster_drills


def test_cluster_drills_read_any_process(cluster_drills, oddly_named_process, tmp_path, monkeypatch):
    """The cluster drill walks every process of the machine to find a node's Apache (the
    pid file's process and its descendants): one whose name is not UTF-8 (a mutation run
    beside it) stopped it with a traceback. Here this test's process plays the node's
    Apache, and the oddly named child is found among its descendants."""
    apache = tmp_path / "node2" / "apache"
    apache.mkdir(parents=True)
    (apache / "httpd.pid").write_text(f"{os.getpid()}\n")
    monkeypatch.setattr(cluster_drills, "CLUSTER_DIR", str(tmp_path))
    pids = cluster_drills.apache_pids(2)
    assert pids[0] == os.getpid() and oddly_named_process in pids
    fields = cluster_drills.stat_fields(oddly_named_process)
    assert fields is not None and int(fields[1]) == os.getpid()


def test_cluster_drills_failed_delete_may_have_committed(cluster_drills):
    """A DELETE that got no answer (its node killed after the commit) may have been applied:
    its row gone is not a lost write (CI's kill drill said "sid 135 acknowledged (201) but
    absent"); still there, it must be unchanged. Acknowledged writes are checked as before."""
    acked = {1: "kept", 2: "deleted", 3: "unknown-applied", 4: "unknown-not-applied", 5: "lost", 6: "altered"}
    rows = {1: "kept", 4: "unknown-not-applied", 6: "other", 2: "deleted"}
    errors, applied = cluster_drills.wrong_writes(acked, {2}, [3, 4, 6], rows)
    assert errors == [
        "sid 2 deleted (204) but present",
        "sid 5 acknowledged (201) but absent",
        "sid 6 changed: 'other', not 'altered'",
    ]
    assert applied == 1
    assert cluster_drills.wrong_writes({1: "a"}, set(), [], {1: "a"}) == ([], 0)

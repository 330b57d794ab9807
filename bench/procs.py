# ruff: noqa: S603
"""Processes, for the benchmarks (bench.py, cluster_bench.py, flood.py): run a command,
find a server's processes from its pid file, and their CPU time from /proc."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*cmd: str, who: str = "bench", **kw) -> str:
    """A command's output, from the project's folder by default; its output and a stop if it fails."""
    kw.setdefault("cwd", ROOT)
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"{who}: failed: {' '.join(cmd)}")
    return res.stdout


def found(pattern: str, text: str) -> str:
    """The first group of `pattern` in a tool's output: a clear stop if it is not there."""
    m = re.search(pattern, text)
    if m is None:
        raise SystemExit(f"bench: {pattern!r} not found in:\n{text}")
    return m.group(1)


def pidfile(path: str) -> int:
    with open(path) as f:
        return int(f.readline())


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command (state, ppid, …, utime at 11, stime
    at 12), None if gone: the benchmarks' one reader of it."""
    try:
        # latin-1: a command name is any bytes (another program's may not be UTF-8: the run stopped)
        with open(f"/proc/{pid}/stat", encoding="latin-1") as f:
            # pid (comm) state ppid …: the command may hold spaces, not the closing parenthesis
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):  # not a process, or gone meanwhile
        return None


def parents() -> dict[int, int]:
    """Every process's parent."""
    found = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        fields = stat_fields(p)
        if fields is not None:
            found[int(p)] = int(fields[1])
    return found


def descendants(root: int) -> list[int]:
    """root and its descendants."""
    parent_of = parents()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(c for c, pp in parent_of.items() if pp == pid)
    return found


def cpu_ticks(pids: list[int]) -> int:
    """User and system CPU of these processes, in clock ticks (those gone count 0)."""
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total

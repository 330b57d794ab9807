"""Logs that cannot fill the disk, and lose no line (issue #20): make test-apache-drills runs

    python drills/log_rotation.py API LOG_DIR REQUESTS SIZE_BYTES FILES

against Apache started with a small rotation size (APACHE_LOG_SIZE, kiva-httpd.conf's
rotatelogs pipes): REQUESTS requests from 8 threads, each with a path of its own (its
audit line in kiva-error.log, its line in kiva-access.log). Then every request's line
must be found exactly once in each log's files, the logs must have rotated (more than
2 files each), and stayed within FILES files of at most SIZE_BYTES plus one write each (written here).
"""

import concurrent.futures
import glob
import os
import sys
import time
import uuid

import requests

READ = 65536  # rotatelogs checks the size between reads of its pipe: a file may pass it by one


def main(api: str, log_dir: str, total: int, size: int, files: int) -> int:
    run = uuid.uuid4().hex[:8]
    # what the logs held before (Apache restarted appends to the first file of its circle)
    before = {path: os.path.getsize(path) for path in glob.glob(os.path.join(log_dir, "kiva-*.log.r*"))}
    session = requests.Session()

    def one(i: int) -> int:
        return session.get(f"{api}/stuff/rot-{run}-{i}", timeout=30).status_code

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(total)))
    seconds = time.monotonic() - start
    assert set(statuses) == {404}, set(statuses)
    time.sleep(1)  # the pipes drained
    problems = []
    for log in ("kiva-error.log", "kiva-access.log"):
        paths = sorted(glob.glob(os.path.join(log_dir, log + ".r*")))
        seen: dict[str, int] = {}
        for path in paths:
            with open(path, errors="replace") as lines:
                for line in lines:
                    if f"/stuff/rot-{run}-" in line:
                        key = line.split(f"/stuff/rot-{run}-")[1].split()[0]
                        seen[key] = seen.get(key, 0) + 1
        lost = total - len(seen)
        twice = sum(1 for n in seen.values() if n > 1)
        biggest = max((os.path.getsize(p) - before.get(p, 0) for p in paths), default=0)
        print(
            f"log rotation: {log}: {total} requests in {seconds:.1f} s, {len(paths)} files (at most {files}),"
            f" largest {biggest} bytes (rotation at {size}), {lost} lines lost, {twice} twice"
        )
        if lost or twice:
            problems.append(f"{log}: {lost} lines lost, {twice} twice")
        if not 2 < len(paths) <= files:
            problems.append(f"{log}: {len(paths)} files, not rotated within {files}")
        if biggest > size + READ:
            problems.append(f"{log}: a file of {biggest} bytes")
    for problem in problems:
        print(f"log rotation: {problem}", file=sys.stderr)
    print(f"log rotation: {'FAIL' if problems else 'passed'}")
    return 1 if problems else 0


if __name__ == "__main__":
    api, log_dir, total, size, files = sys.argv[1:6]
    sys.exit(main(api.rstrip("/"), log_dir, int(total), int(size), int(files)))

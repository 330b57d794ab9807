"""make mutation: mutmut 3 on the modules that carry API.md's rules, then the score of
each module and its surviving mutants (tests/MUTANTS.md says why each one is left).

mutmut copies the code into mutants/, mutates the functions of the modules listed in
pyproject.toml's [tool.mutmut] only_mutate, runs the in-process SQLite suite once to
learn which tests reach which function, then each mutant against those tests only
(stopping at the first failure). One mutant at a time: the suite's tests share one
SQLite file, which two runs at once would lock (503s would count as kills).

Limits of mutmut 3 (https://mutmut.readthedocs.io): functions with decorators (the
routes themselves, @blueprint.get…) and module-level constants are not mutated. Nor are
the set-up functions marked `# pragma: no mutate block (set-up)` (init_app…): they run
when the app is created, before mutmut forks the process that runs a mutant's tests, so
their mutants would never run (each one waited for mutmut's timeout, about 15 s).

Usage: scripts/mutation.py [MUTANT NAME PATTERN…] (e.g. "paging.*", or in MUTANTS), or
scripts/mutation.py --report (the results so far, after an interrupted run); the Makefile sets
the environment of the in-process suite (APP_CONFIG, KIVA_SQLITE, APP_SECRET…).
"""

import collections
import glob
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTMUT = os.path.join(os.path.dirname(sys.executable), "mutmut")
KILLED = {1, 3, 37}  # a test failed, pytest failed, the type checker refused it
TIMEOUT = {36, -24, 24, 152, 255}  # a mutant that hangs the suite is caught too
LOG = os.path.join(HERE, "mutants", "mutmut-run.log")


def main() -> int:
    os.chdir(HERE)
    start = time.monotonic()
    os.makedirs("mutants", exist_ok=True)
    if sys.argv[1:] != ["--report"]:  # --report: the results of the runs so far, nothing run
        with open(LOG, "w") as log:  # mutmut's progress display: not for a terminal log
            command = [MUTMUT, "run", "--max-children", "1", *sys.argv[1:], *os.environ.get("MUTANTS", "").split()]
            run = subprocess.run(command, stdout=log, stderr=log, check=False)  # noqa: S603  # our venv's mutmut
        if run.returncode:
            print(f"make mutation: mutmut failed ({run.returncode}), see {LOG}", file=sys.stderr)
            return run.returncode
    minutes = (time.monotonic() - start) / 60
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    survivors: list[str] = []
    for meta in sorted(glob.glob("mutants/**/*.py.meta", recursive=True)):
        module = os.path.relpath(meta, "mutants")[: -len(".meta")]
        if not os.path.exists(module):  # a module since moved or removed: stale results
            continue
        with open(meta) as f:
            codes = json.load(f)["exit_code_by_key"]
        for name, code in codes.items():
            if code is None:  # not run yet (an interrupted run, or MUTANTS narrowed it)
                counts[module]["not run"] += 1
                continue
            outcome = "killed" if code in KILLED or code in TIMEOUT else "survived" if code == 0 else f"other ({code})"
            counts[module][outcome] += 1
            if outcome != "killed":
                survivors.append(name)
    if sys.argv[1:] != ["--report"]:
        print(f"make mutation: {minutes:.1f} min")
    print(f"{'module':<24} {'mutants':>8} {'killed':>8} {'score':>7} {'not run':>8}")
    below = []
    for module, c in sorted(counts.items()):
        total = sum(n for outcome, n in c.items() if outcome != "not run")
        score = c["killed"] / total if total else float("nan")
        below += [module] if total and score < 0.9 else []
        print(f"{module:<24} {total:>8} {c['killed']:>8} {score:>7.1%} {c['not run']:>8}")
    print(f"\n{len(survivors)} mutants not killed (mutmut show <name> for the diff):")
    for name in survivors:
        show = [MUTMUT, "show", name]
        diff = subprocess.run(show, capture_output=True, text=True, check=False).stdout  # noqa: S603  # our venv's mutmut
        changed = [line for line in diff.splitlines() if line[:1] in "-+" and line[:3] not in ("---", "+++")]
        print(f"  {name}: " + " → ".join(line[1:].strip() for line in changed))
    if below:
        print(f"\nbelow 90 %: {', '.join(below)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

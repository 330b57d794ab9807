"""The architecture, checked: who may import whom (production/__init__.py is the map).

Layers, from the top: app.py; the blueprints; auth.py; database.py; the production
package; model.py (types only). A module imports only from layers below its own, the
production modules import each other without a cycle, and nothing the app runs imports
the drills, scripts, tests or benchmarks. Every import counts, deferred ones included.
Importing a module changes nothing outside it: its init_app(app) sets what it needs.
"""

import ast
import json
import os
import subprocess
import sys

from helpers import HERE

BLUEPRINTS = {"stuff", "things", "users", "owned", "compute", "service"}
LAYERS = [{"app"}, BLUEPRINTS, {"auth"}, {"database"}, {"production"}, {"model"}]


def layer(module: str) -> int:
    top = module.split(".")[0]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def app_modules() -> dict[str, str]:
    """Every module the app runs, by dotted name: its file."""
    found = {f[:-3]: os.path.join(HERE, f) for f in os.listdir(HERE) if f.endswith(".py")}
    package = os.path.join(HERE, "production")
    found |= {f"production.{f[:-3]}": os.path.join(package, f) for f in os.listdir(package) if f.endswith(".py")}
    found["production"] = found.pop("production.__init__")
    return found


def imports(path: str, known: set[str]) -> set[str]:
    """The project's modules that this file imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known or name.split(".")[0] in {"drills", "scripts", "tests", "bench"}}


def graph() -> dict[str, set[str]]:
    modules = app_modules()
    return {name: imports(path, set(modules)) - {name} for name, path in modules.items()}


def test_every_module_has_a_layer():
    assert {m for m in app_modules() if m.split(".")[0] not in set().union(*LAYERS)} == set()
    assert len([m for m in app_modules() if "." not in m and m != "production"]) == 10  # the course's core


def test_imports_go_down_only():
    upward = [
        (a, b)
        for a, targets in graph().items()
        for b in targets
        if b.split(".")[0] in {"drills", "scripts", "tests", "bench"} or layer(b) < layer(a)
    ]
    assert upward == []


def test_blueprints_do_not_import_each_other():
    assert [(a, b) for a, targets in graph().items() if a in BLUEPRINTS for b in targets if b in BLUEPRINTS] == []


def test_no_import_cycle():
    edges = graph()
    done: set[str] = set()
    cycles = []

    def visit(node: str, path: list[str]):
        if node in path:
            cycles.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for node in sorted(edges):
        visit(node, [])
    assert cycles == []


# imports each module given, in a fresh interpreter: what changed in os.environ, in the
# logging module's configuration, or in the metrics folder, module by module
IMPORT_EFFECTS = """
import importlib, json, logging, os, sys

def configuration():
    loggers = {name: (lg.level, lg.propagate, len(lg.handlers), lg.disabled)
               for name, lg in logging.root.manager.loggerDict.items()
               if isinstance(lg, logging.Logger) and name.startswith("kiva")}
    unchanged = {name: v for name, v in loggers.items() if v != (logging.NOTSET, True, 0, False)}
    return {"environ": dict(os.environ), "folder": sorted(os.listdir(os.environ["KIVA_METRICS_DIR"])),
            "logging": [logging.root.level, len(logging.root.handlers), logging.logThreads,
                        logging.logProcesses, logging.logMultiprocessing, logging.raiseExceptions],
            "kiva loggers": unchanged}

effects = {}
for name in sys.argv[1:]:
    before = configuration()
    importlib.import_module(name)
    after = configuration()
    effects[name] = sorted(key for key in before if before[key] != after[key])
print(json.dumps(effects))
"""


def test_importing_a_module_changes_nothing(tmp_path):
    """Importing a module (all but app.py, whose job it is) sets no environment variable,
    changes no logging setting, creates or removes no folder: its init_app(app) does."""
    modules = sorted(m for m in app_modules() if m != "app")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")}
    env["KIVA_METRICS_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_EFFECTS, *modules], cwd=HERE, env=env, capture_output=True, text=True, check=True
    )
    effects = json.loads(out.stdout)
    assert set(effects) == set(modules)
    assert {name: changed for name, changed in effects.items() if changed} == {}


def test_the_checks_see_an_upward_import(tmp_path):
    """The reader finds deferred imports: an upward one, planted, is seen."""
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from service import get_version\n    import stuff\n")
    assert imports(str(planted), {"service", "stuff"}) == {"service", "stuff"}


def test_each_setting_written_once():
    """A KIVA_* setting: its default in app.conf only, read there from the environment
    variable of its own name (docs/configuration.md); the modules read app.config."""
    import re

    conf = open(os.path.join(HERE, "app.conf")).read()
    defined = set(re.findall(r"^(KIVA_[A-Z_]+)\b[^=\n]*=", conf, re.M))
    for line in conf.splitlines():
        for name in re.findall(r"os\.environ(?:\.get\(|\[)\"(\w+)\"", line):
            if name != "APP_SECRET":  # the token secret: FSA_TOKEN_SECRET (docs/configuration.md)
                assert line.startswith(f"{name} ") or name == "KIVA_SQLITE", line  # ANODB's file
    read, written_in_modules = set(), []
    for path in app_modules().values():
        source = open(path).read()
        read |= set(re.findall(r"config(?:\.get\(|\[)\"(KIVA_[A-Z_]+)\"", source))
        written_in_modules += re.findall(r"config\.setdefault\(\"(KIVA_[A-Z_]+)\"", source)
    assert written_in_modules == []
    assert read - defined == {"KIVA_UNKNOWN_USER_HASH"}  # not a setting: auth.init_app makes it


def test_kiva_wsgi_refuses_a_setting_of_another_name(tmp_path):
    """kiva.env: an APP_ name that is not a generic one would be read by nothing (the
    settings are named KIVA_…): kiva.wsgi refuses it, before the app is imported."""
    env_file = tmp_path / "kiva.env"
    env_file.write_text("APP_SECRET=x\nAPP_SOME_SETTING=8\n")
    env_file.chmod(0o600)
    code = "import runpy; runpy.run_path('kiva.wsgi')"
    env = dict(os.environ, KIVA_ENV=str(env_file))
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "APP_SOME_SETTING is read by nothing" in out.stderr

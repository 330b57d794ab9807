# Kiva under Apache httpd + mod_wsgi: the WSGI entry point of production.
#
# mod_wsgi's daemon processes do not see any shell environment: the variables
# the configuration reads come from here and from kiva.env, a file next to this
# one that is never committed nor copied by `make deploy`, readable by the app
# account only (chmod 600), with one VARIABLE=value per line:
#
#   KIVA_DB=host=db.example.org dbname=kiva user=kiva application_name=kiva
#   APP_SECRET=<40 random characters: the token signing secret, shared by all processes>
#   KIVA_METRICS_TOKEN=<random, 16 characters or more: Prometheus's bearer token for GET /metrics>
#
# Variables already set in the environment win over the file. Kiva's settings are named
# as their configuration keys (KIVA_…, docs/configuration.md): an APP_ name other than
# the generic ones is refused, as nothing would read it (a name from before the renaming).
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

os.environ.setdefault("APP_NAME", "kiva")
os.environ.setdefault("APP_CONFIG", os.path.join(here, "server.conf"))

GENERIC = {"APP_SECRET", "APP_NAME", "APP_CONFIG"}
env_file = os.environ.get("KIVA_ENV", os.path.join(here, "kiva.env"))
if os.path.exists(env_file):
    if os.stat(env_file).st_mode & 0o077:
        raise RuntimeError(f"{env_file} holds secrets: it must be readable by the app account only")
    with open(env_file) as env:
        for line in env:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                if name.strip().startswith("APP_") and name.strip() not in GENERIC:
                    raise RuntimeError(f"{env_file}: {name.strip()} is read by nothing: see docs/configuration.md")
                os.environ.setdefault(name.strip(), value.strip())

from app import app as application  # noqa: E402, F401

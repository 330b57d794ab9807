"""What production adds to the course's Kiva: the layers around the routes.

The course's core sits at the top of the project (app.py, database.py, model.py,
auth.py, the blueprints, the SQL files). This package holds what a real deployment
needs on top of it. No module here imports a blueprint, nor anything above it
(tests/test_layers.py reads the imports and checks it).

Every request, in the order app.py wires them:
    context      the request, its state (RequestState) and the app behind Flask's proxies
    hooks        one Flask hook each way that calls Kiva's in a fixed order
    security     the client's address, cross-site writes refused, response headers
    errors       every error a JSON object with the right status, no secret in it
    throttle     failed password checks counted per login and address (429)
    ratelimit    password hashes counted per client (429), the `limits` library
    usercache    the shared Redis cache of user rows and permissions (several servers)
    metrics      Prometheus figures summed over processes: GET /metrics
    audit        one log line per request

What routes use:
    etag         ETag, If-None-Match and If-Match on single resources
    paging       keyset paging (`after`, `limit`) and the Link header of list routes

The API describing itself:
    declared     what each route declares (authz, authn), kept for the document
    openapi      GET /openapi.json, generated from the route table
    docs         GET /docs, Swagger UI served locally

The database:
    engines      SQLite and PostgreSQL made to answer the same JSON
    migrate      schema versions (yoyo migrations): python -m production.migrate
    snapshot     per-table counts and checksums: what upgrades and restores must keep

Library workarounds, one declared module per library (tests/test_library_workarounds.py):
    anodb_private   anodb: fail fast while the database is down, recover after
    fsa_private     FlaskSimpleAuth: the token scheme's issue time
"""

VERSION = "1.0.0"  # the API's version: GET /version, /openapi.json, kiva_build_info

"""GET /openapi.json: a valid OpenAPI 3.1 document of every route, method, parameter and status.

The route table comparison runs in-process (it reads app.url_map); the rest runs against
every server, through Apache's /api prefix too.
"""

import os
import re
import urllib.parse

import jsonschema
import pytest
from helpers import EXTERNAL
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

AUTOMATIC = {"HEAD", "OPTIONS"}  # Flask's, on every route


@pytest.fixture
def document(ft_client):
    return ft_client.get("/openapi.json", 200, login=None).json


def operations(document) -> dict[tuple[str, str], dict]:
    return {(method.upper(), path): op for path, ops in document["paths"].items() for method, op in ops.items()}


def test_document_is_valid_openapi_31(api, document):
    res = api.get("/openapi.json", 200, login=None)
    assert res.headers["Content-Type"].startswith("application/json")
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)  # raises on any error


def test_validator_refuses_a_broken_document(document):
    """The validator is not a rubber stamp: a status without a description is refused."""
    broken = dict(document, paths={"/x": {"get": {"responses": {"200": {}}}}})
    with pytest.raises(Exception, match="description"):
        validate(broken, cls=OpenAPIV31SpecValidator)


@pytest.mark.skipif(EXTERNAL, reason="reads the route table of the app, in-process")
def test_every_route_and_method_is_documented_and_nothing_else(document):
    from app import app

    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^>:]+:)?(\w+)>", r"{\1}", rule.rule)
        routes |= {(method, path) for method in (rule.methods or set()) - AUTOMATIC}
    documented = set(operations(document))
    assert routes - documented == set(), "routes missing from the document"
    assert documented - routes == set(), "documented operations without a route"
    assert len(routes) >= 45


def test_every_operation_has_its_answer_described(document):
    """A route missing from openapi.RESULTS is documented without its answer, marked: not for long."""
    undescribed = [op["operationId"] for op in operations(document).values() if "x-kiva-undescribed" in op]
    assert undescribed == []


@pytest.mark.skipif(EXTERNAL, reason="builds a document in-process")
def test_a_route_unknown_to_the_generator_is_marked_not_dropped():
    """A route added without its entry in openapi.RESULTS is in the document, marked undescribed."""
    import types

    from werkzeug.routing import Map, Rule

    from app import app
    from production import declared, openapi

    def get_undocumented():  # pragma: no cover: never called
        return "", 204

    rules = [r.empty() for r in app.url_map.iter_rules()] + [
        Rule("/undocumented", endpoint="extra.get_undocumented", methods=["GET"])
    ]
    url_map = Map(rules, converters=app.url_map.converters)
    decls = dict(
        declared.declarations(app), **{"extra.get_undocumented": declared.Declaration(["OPEN"], None, get_undocumented)}
    )
    stub = types.SimpleNamespace(url_map=url_map, extensions={declared.ROUTES: decls}, config=app.config, name=app.name)
    document = openapi.generate(stub)
    assert "x-kiva-undescribed" in document["paths"]["/undocumented"]["get"]
    assert not any("x-kiva-undescribed" in op for op in operations(openapi.generate(app)).values())
    # a route whose declaration was not recorded (registered before declared.record) stops it
    stub.extensions = {declared.ROUTES: declared.declarations(app)}
    with pytest.raises(RuntimeError, match="extra.get_undocumented"):
        openapi.generate(stub)


def test_summaries_are_the_route_comments_as_text(document):
    summaries = {key: op.get("summary") for key, op in operations(document).items()}
    assert summaries[("GET", "/stuff/{sid}")] == "get this stuff"
    # a comment on two lines is one sentence, its second "#" gone
    patch_user = str(summaries[("PATCH", "/users/{uid}")])
    assert patch_user.endswith("; an administrator changes anybody's password and isadmin")
    assert [key for key, text in summaries.items() if not text or "#" in text or "\n" in text] == []


def test_servers_points_to_the_api_behind_its_prefix(document):
    base = os.environ.get("FLASK_TESTER_APP", "app")
    prefix = urllib.parse.urlparse(base).path.rstrip("/") if EXTERNAL else ""
    assert document["servers"] == [{"url": prefix or "/"}]


def test_parameters_have_the_types_and_bounds_of_model_py(document):
    ops = operations(document)
    query = {p["name"]: p for p in ops["GET", "/stuff"]["parameters"]}
    assert query["filter"]["schema"]["maxLength"] == 200 and query["filter"]["schema"]["minLength"] == 1
    assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    assert query["after"]["schema"]["maximum"] == 2**63 - 1 and query["after"]["in"] == "query"
    assert not query["filter"]["required"]
    sid = {p["name"]: p for p in ops["GET", "/stuff/{sid}"]["parameters"]}["sid"]
    assert sid["in"] == "path" and sid["required"] and sid["schema"]["minimum"] == 0
    body = ops["POST", "/things"]["requestBody"]
    assert set(body["content"]) == {"application/json", "application/x-www-form-urlencoded"}
    things = body["content"]["application/json"]["schema"]
    assert things["required"] == ["tname", "oid", "tprice"] and things["additionalProperties"] is False
    assert things["properties"]["tprice"] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMaximum": 10**10,
        "multipleOf": 0.01,
    }
    owners = ops["POST", "/owners"]["requestBody"]["content"]["application/json"]["schema"]
    assert "@" in owners["properties"]["omail"]["pattern"]
    patch = ops["PATCH", "/things/{tid}"]["requestBody"]
    assert not patch["required"] and "required" not in patch["content"]["application/json"]["schema"]
    # the pydantic User, by its own JSON schema, as JSON or as a form field holding JSON
    users = ops["POST", "/users"]["requestBody"]["content"]
    assert users["application/json"]["schema"]["properties"]["user"] == {"$ref": "#/components/schemas/User"}
    assert users["application/x-www-form-urlencoded"]["encoding"]["user"]["contentType"] == "application/json"
    user = document["components"]["schemas"]["User"]
    assert user["required"] == ["login", "password"] and user["additionalProperties"] is False
    assert user["properties"]["login"]["maxLength"] == 200


@pytest.mark.parametrize(
    ("type_name", "good", "bad"),
    [
        ("Name", ["a", "x" * 200, "Chair é"], ["", "x" * 201, "a\x00b", "a\nb", "\x85"]),
        ("Mail", ["a@b.c", "calvin@example.org"], ["a@b", "a b@c.d", "@b.c", "a@b.", "a@@b.c"]),
        ("Limit", [1, 1000], [0, 1001, -1]),
        ("Int64", [0, -(2**63), 2**63 - 1], [2**63, -(2**63) - 1]),
        ("Price", [0, 12.5, 9999999999.99], [-1, 0.001, 10**10]),
    ],
)
def test_type_schema_and_type_agree(type_name, good, bad):
    """One rule, two readers: what a type's json_schema accepts, the type accepts, and conversely."""
    import model

    kind = getattr(model, type_name)
    for value in good:
        jsonschema.validate(value, kind.json_schema)
        kind(value)
    for value in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, kind.json_schema)
        with pytest.raises(ValueError):
            kind(value)


def security(op) -> list[str]:
    return sorted(name for requirement in op["security"] for name in requirement)


def test_security_schemes_per_route(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["basic"] == {"type": "http", "scheme": "basic"}
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    ops = operations(document)
    for key in [("GET", "/version"), ("GET", "/stuff"), ("POST", "/register"), ("GET", "/openapi.json")]:
        assert ops[key]["security"] == [], key  # OPEN
    assert security(ops["GET", "/login"]) == ["basic"]
    assert security(ops["POST", "/login"]) == ["basic"]
    login = ops["POST", "/login"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert set(login) == {"USER", "PASS"}  # parameter authentication, in the body only
    assert security(ops["GET", "/qui-suis-je"]) == ["bearer"]
    assert security(ops["GET", "/hello"]) == ["basic", "bearer"]
    assert "USER" not in ops["POST", "/stuff"]["requestBody"]["content"]["application/json"]["schema"]["properties"]


def statuses(op) -> set[int]:
    return {int(s) for s in op["responses"]}


def test_statuses_of_api_md(document):
    ops = operations(document)
    assert statuses(ops["GET", "/version"]) == {200, 400, 503}
    assert statuses(ops["GET", "/stuff/{sid}"]) == {200, 304, 400, 404, 503}
    assert statuses(ops["POST", "/stuff"]) == {201, 400, 403, 409, 413, 503}
    assert statuses(ops["POST", "/things"]) == {201, 400, 401, 403, 404, 409, 413, 429, 503}
    assert statuses(ops["DELETE", "/owners/{oid}"]) == {204, 400, 401, 403, 404, 409, 412, 429, 503}
    assert statuses(ops["GET", "/owners"]) == {200, 400, 401, 429, 503}
    assert statuses(ops["GET", "/admin"]) == {200, 400, 401, 403, 429, 503}
    assert statuses(ops["GET", "/qui-suis-je"]) == {200, 400, 401, 503}  # no password: no throttling
    assert statuses(ops["PATCH", "/users/{uid}"]) == {204, 400, 401, 403, 404, 412, 413, 429, 503}
    for op in ops.values():
        for status, res in op["responses"].items():
            if int(status) >= 400:  # every error is {"error": "…"}, health's 503 says more
                schema = res["content"]["application/json"]["schema"]
                assert (
                    schema == {"$ref": "#/components/schemas/Error"}
                    or {"$ref": "#/components/schemas/Error"} in (schema["allOf"])
                )
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]


def test_headers_of_api_md(document):
    ops = operations(document)
    get_stuff = ops["GET", "/stuff"]["responses"]
    assert get_stuff["200"]["headers"] == {"Link": {"$ref": "#/components/headers/Link"}}
    assert get_stuff["200"]["content"]["application/json"]["schema"]["type"] == "array"
    single = ops["GET", "/things/{tid}"]
    assert "ETag" in single["responses"]["200"]["headers"] and "ETag" in single["responses"]["304"]["headers"]
    assert {"name": "If-None-Match", "in": "header", "required": False}.items() <= single["parameters"][-1].items()
    put = ops["PUT", "/things/{tid}"]
    assert put["parameters"][-1]["name"] == "If-Match" and "412" in put["responses"]
    assert "Retry-After" in ops["GET", "/hello"]["responses"]["429"]["headers"]
    assert "Retry-After" in ops["GET", "/hello"]["responses"]["503"]["headers"]
    assert "WWW-Authenticate" in ops["GET", "/hello"]["responses"]["401"]["headers"]
    assert document["components"]["responses"]["MethodNotAllowed"]["headers"] == {
        "Allow": {"$ref": "#/components/headers/Allow"}
    }
    # lists are not single resources: no ETag on /owned/<uid>
    assert "If-None-Match" not in {p["name"] for p in ops["GET", "/owned/{uid}"]["parameters"]}


def test_answers_match_their_schemas(api, document):
    """A few real answers, checked against the document (schemathesis checks them all: make test-schema)."""
    ops = operations(document)
    components = {"components": document["components"]}

    def check(method, path, res):
        schema = ops[method, path]["responses"][str(res.status_code)]["content"]["application/json"]["schema"]
        jsonschema.validate(res.json, {**schema, **components})

    check("GET", "/version", api.get("/version", 200, login=None))
    check("GET", "/stuff", api.get("/stuff", 200, login=None))
    check("GET", "/stuff/{sid}", api.get("/stuff/1", 200, login=None))
    check("GET", "/stuff/{sid}", api.get("/stuff/987654321", 404, login=None))
    check("GET", "/users/{uid}", api.get("/users/1", 200, login="calvin"))
    check("GET", "/things", api.get("/things", 200, login="hobbes"))
    check("GET", "/hello", api.get("/hello", 401, login=None))

"""GET /openapi.json: a valid OpenAPI 3.1 document of every route, method, parameter and status.

The route table comparison runs in-process (it reads app.url_map); the rest runs against
every server, through Apache's /api prefix too.
"""

import os
import re
import urllib.parse

import jsonschema
import pytest
from helpers import EXTERNAL, unique
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
    """A route without contract.answers is documented without its answer, marked: not for long."""
    undescribed = [op["operationId"] for op in operations(document).values() if "x-kiva-undescribed" in op]
    assert undescribed == []


@pytest.mark.skipif(EXTERNAL, reason="builds a document in-process")
def test_a_route_unknown_to_the_generator_is_marked_not_dropped():
    """A route added without contract.answers is in the document, marked undescribed."""
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
    # JSON only (tests/test_generated_client.py), the form said in words
    assert set(body["content"]) == {"application/json"} and "application/x-www-form-urlencoded" in body["description"]
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
    # no field required, but one of them (anyOf): a body must come
    assert patch["required"] and "required" not in patch["content"]["application/json"]["schema"]
    assert set(patch["content"]) == {"application/json"}
    # the pydantic User, by its own JSON schema; in a form, its JSON in the field
    users = ops["POST", "/users"]["requestBody"]
    assert users["content"]["application/json"]["schema"]["properties"]["user"] == {"$ref": "#/components/schemas/User"}
    assert "user=<json>" in users["description"]
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


def test_text_patterns_are_usable_by_test_generators(document):
    """schemathesis drops a pattern it cannot translate (one naming surrogates), then
    generates control characters the server refuses: every pattern of the document is kept."""
    from schemathesis.specs.openapi.converter import enforced_pattern

    def patterns(node) -> set[str]:
        if isinstance(node, dict):
            found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
            return found.union(*map(patterns, node.values()))
        return set().union(*map(patterns, node)) if isinstance(node, list) else set()

    assert len(patterns(document)) >= 3  # names, mail addresses, If-Match
    for pattern in patterns(document):
        assert enforced_pattern(pattern) is not None, pattern


@pytest.mark.skipif(EXTERNAL, reason="the model's types: in-process")
def test_lone_surrogates_refused():
    """Half a surrogate pair is no text a database stores: refused, though not in the pattern."""
    import model

    for kind in (model.Name, model.Mail):
        with pytest.raises(ValueError):
            kind("a\ud800b@example.org")


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
    assert security(ops["GET", "/qui-suis-je"]) == ["bearer"]
    assert security(ops["GET", "/hello"]) == ["basic", "bearer"]
    # USER/PASS (FlaskSimpleAuth's "param") have no OpenAPI security scheme: as body fields a
    # client would send them next to an Authorization header, a 400 (one kind of credentials)
    assert "requestBody" not in ops["POST", "/login"]
    bodies = [op["requestBody"]["content"]["application/json"]["schema"] for op in ops.values() if "requestBody" in op]
    assert [b for b in bodies if {"USER", "PASS"} & set(b["properties"])] == []


def statuses(op) -> set[int]:
    return {int(s) for s in op["responses"]}


def test_statuses_of_api_md(document):
    ops = operations(document)
    assert statuses(ops["GET", "/version"]) == {200, 400, 503}
    assert statuses(ops["GET", "/stuff/{sid}"]) == {200, 304, 400, 404, 503}
    assert statuses(ops["POST", "/stuff"]) == {201, 400, 403, 409, 411, 413, 503}
    assert statuses(ops["POST", "/things"]) == {201, 400, 401, 403, 404, 409, 411, 413, 429, 503}
    assert statuses(ops["DELETE", "/owners/{oid}"]) == {204, 400, 401, 403, 404, 409, 412, 429, 503}
    assert statuses(ops["GET", "/owners"]) == {200, 400, 401, 429, 503}
    assert statuses(ops["GET", "/admin"]) == {200, 400, 401, 403, 429, 503}
    assert statuses(ops["GET", "/qui-suis-je"]) == {200, 400, 401, 503}  # no password: no throttling
    assert statuses(ops["PATCH", "/users/{uid}"]) == {204, 400, 401, 403, 404, 411, 412, 413, 429, 503}
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


def test_password_rules_are_those_the_server_applies(document):
    register = operations(document)["POST", "/register"]["requestBody"]["content"]["application/json"]["schema"]
    assert register["properties"]["pword"]["minLength"] == 6 and register["properties"]["pword"]["maxLength"] == 72
    hash_ = [p for p in operations(document)["GET", "/cmp/hash"]["parameters"] if p["name"] == "apass"][0]
    assert "minLength" not in hash_["schema"] and hash_["schema"]["maxLength"] == 72
    if not EXTERNAL:  # the model's minimum is FlaskSimpleAuth's quality rule
        import model
        from app import app

        assert app.config["FSA_PASSWORD_LENGTH"] == model.PASSWORD_MIN


def test_a_patch_with_nothing_to_change_is_invalid_by_the_document(document):
    body = operations(document)["PATCH", "/users/{uid}"]["requestBody"]["content"]["application/json"]["schema"]
    assert [branch["required"] for branch in body["anyOf"]] == [["password"], ["isadmin"]]
    # every PATCH: the server answers 400 to an empty one (nothing to change), so `{}` is
    # invalid by the document too (a generated client's, schemathesis's positive data)
    patches = {path: op for (method, path), op in operations(document).items() if method == "PATCH"}
    assert patches
    for path, op in patches.items():
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema.get("required") or schema.get("anyOf"), path
        assert not jsonschema.Draft202012Validator(schema).is_valid({}), path
        # nulls only: nothing to change either (the server reads null as left out)
        nulls = {branch["required"][0]: None for branch in schema.get("anyOf", [])}
        assert not nulls or not jsonschema.Draft202012Validator(schema).is_valid(nulls), path


def test_null_is_an_optional_parameter_left_out(api, document):
    """In a JSON body, null for an optional parameter is documented, and taken as left out."""
    owners = operations(document)["PATCH", "/owners/{oid}"]["requestBody"]["content"]
    assert owners["application/json"]["schema"]["properties"]["oname"]["type"] == ["string", "null"]
    oid = api.post("/owners", 201, login="calvin", json={"oname": unique("Null"), "omail": "n@example.org"}).json["oid"]
    jsonschema.validate({"oname": None, "omail": "m@example.org"}, owners["application/json"]["schema"])
    api.patch(f"/owners/{oid}", 204, login="calvin", json={"oname": None, "omail": "m@example.org"})
    assert api.get(f"/owners/{oid}", 200, login="calvin").json["omail"] == "m@example.org"
    api.patch(f"/owners/{oid}", 400, login="calvin", json={"oname": None, "omail": None})
    api.delete(f"/owners/{oid}", 204, login="calvin")


def test_if_match_syntax_is_documented(document):
    import re

    header = [p for p in operations(document)["PUT", "/stuff/{sid}"]["parameters"] if p["name"] == "If-Match"][0]
    pattern = re.compile(header["schema"]["pattern"])
    for good in ["", '"1-2"', "*", 'W/"1-2"', '"1-2", "1-3"']:
        assert pattern.search(good), good
    for bad in ["1-2", '"1-2', "**", "{}", '"1- 2"', '"1-\t2"', 'W/ "1-2"', '"1-2",']:
        assert not pattern.search(bad), bad

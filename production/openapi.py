"""GET /openapi.json: the OpenAPI 3.1 document of Kiva, generated at start-up from the route table.

Nothing here lists the routes. Each operation comes from `app.url_map` (paths, methods,
path converters), what the route declared to FlaskSimpleAuth (declared.py: `authz`,
`authn`, the view function) and the view function's signature: parameter names, types
(the Kiva types of model.py carry their JSON schema, the pydantic `User` its own) and
defaults (a parameter with one is optional). The error statuses follow from the same
declarations (a non-OPEN route may answer 401, an ADMIN or object-permission route 403…).

What the code cannot say is in RESULTS, by endpoint: the success status and the shape of
the answer, and the conflicts (409) or missing references (404) a route's SQL may meet.
A route without an entry there is still in the document, marked `x-kiva-undescribed`,
and tests/test_openapi.py fails on it: the document cannot miss a route.
"""

import copy
import inspect
import re
import types
import typing

import flask
import FlaskSimpleAuth as fsa
import pydantic

from model import Name, Price
from production import VERSION, declared, ratelimit

blueprint = fsa.Blueprint("openapi", __name__)

DOCUMENT = "kiva.openapi"  # the app.extensions key of the generated document
BODY_METHODS = {"POST", "PUT", "PATCH"}
WRITE_METHODS = BODY_METHODS | {"DELETE"}
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}  # added by Flask to every route, not declared by it
# FlaskSimpleAuth's special parameters: given by the framework, not sent by a client
SPECIAL_PARAMETERS = {fsa.CurrentUser}
# FlaskSimpleAuth authentication schemes → OpenAPI security schemes ("param" is body fields)
SCHEMES = {"basic": "basic", "token": "bearer"}
PRIMITIVES: dict[type, dict] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str], **properties: dict) -> dict:
    return {"type": "object", "required": required, "properties": properties}


def array_of(name: str) -> dict:
    return {"type": "array", "items": ref(name)}


ID = {"type": "integer", "format": "int64"}
SCHEMAS = {
    "Error": obj(["error"], error={"type": "string"}),
    "Stuff": obj(["sid", "stuff"], sid=ID, stuff=Name.json_schema),
    "Owner": obj(["oid", "oname", "omail"], oid=ID, oname=Name.json_schema, omail={"type": "string"}),
    "Thing": obj(["tid", "tname", "oid", "tprice"], tid=ID, tname=Name.json_schema, oid=ID, tprice=Price.json_schema),
    "UserInfo": obj(
        ["uid", "login", "isadmin", "created"],
        uid=ID,
        login=Name.json_schema,
        isadmin={"type": "boolean"},
        created={"type": "string", "format": "date-time"},
    ),
    "Owned": obj(["oid", "object", "owner"], oid=ID, object=Name.json_schema, owner=ID),
    "Version": obj(
        ["app", "version", "user", "now"],
        app={"type": "string"},
        version={"type": "string"},
        user={"type": ["string", "null"]},
        now={"type": "string", "format": "date-time"},
    ),
    "Health": obj(["status", "db"], status={"enum": ["ok", "error"]}, db={"enum": ["ok", "unreachable"]}),
}


def created(key: str) -> dict:
    return obj([key], **{key: ID})


# endpoint → (success status, answer schema or None for no body, statuses its SQL may add)
STRING = {"type": "string"}
RESULTS: dict[str, tuple[int, dict | None, set[int]]] = {
    "service.get_version": (200, ref("Version"), set()),
    "service.get_health": (200, ref("Health"), set()),
    "metrics.get_metrics": (200, STRING, set()),  # Prometheus text; or a scrape token (metrics.py)
    "openapi.get_openapi": (200, {"type": "object"}, set()),
    "docs.get_docs": (200, STRING, set()),
    "docs.get_docs_asset": (200, STRING, set()),
    "stuff.get_stuff": (200, array_of("Stuff"), set()),
    "stuff.post_stuff": (201, created("sid"), {409}),
    "stuff.get_stuff_sid": (200, ref("Stuff"), set()),
    "stuff.put_stuff_sid": (204, None, {409}),
    "stuff.delete_stuff_sid": (204, None, set()),
    "things.get_owners": (200, array_of("Owner"), set()),
    "things.post_owners": (201, created("oid"), {409}),
    "things.get_owners_oid": (200, ref("Owner"), set()),
    "things.patch_owners_oid": (204, None, {409}),
    "things.put_owners_oid": (204, None, {409}),
    "things.delete_owners_oid": (204, None, {409}),
    "things.get_owners_oid_things": (200, array_of("Thing"), set()),
    "things.get_things": (200, array_of("Thing"), set()),
    "things.post_things": (201, created("tid"), {404, 409}),
    "things.get_things_tid": (200, ref("Thing"), set()),
    "things.patch_things_tid": (204, None, {409}),
    "things.put_things_tid": (204, None, {409}),
    "things.delete_things_tid": (204, None, set()),
    "users.post_register": (201, created("uid"), {409}),
    "users.get_login": (200, {"type": "string", "description": "a token"}, set()),
    "users.get_whoami": (200, {"type": "string", "description": "the login"}, set()),
    "users.get_qui_suis_je": (200, {"type": "string", "description": "the login"}, set()),
    "users.get_hello": (200, STRING, set()),
    "users.get_admin": (200, STRING, set()),
    "users.get_users": (200, array_of("UserInfo"), set()),
    "users.post_users": (201, created("uid"), {409}),
    "users.get_users_uid": (200, ref("UserInfo"), set()),
    "users.patch_users_uid": (204, None, set()),
    "users.put_users_uid": (204, None, {409}),
    "users.delete_users_uid": (204, None, {409}),
    "owned.get_owned": (200, array_of("Owned"), set()),
    "owned.get_object": (200, array_of("Owned"), set()),
    "owned.get_owned_uid": (200, array_of("Owned"), set()),
    "owned.post_object": (201, created("oid"), {409}),
    "owned.get_object_oid": (200, ref("Owned"), set()),
    "owned.patch_object_oid": (204, None, {409}),
    "owned.delete_object_oid": (204, None, set()),
    "compute.get_add": (200, {"type": "integer"}, set()),
    "compute.get_hash": (200, {"type": "string", "description": "a password hash"}, set()),
}
# a route missing from RESULTS is still documented, marked: tests/test_openapi.py fails on it
UNDESCRIBED: tuple[int, dict | None, set[int]] = (200, None, set())
# routes that never touch the database (no 503), answer HTML or files
STATIC = {"openapi.get_openapi", "docs.get_docs", "docs.get_docs_asset"}
CONTENT_TYPES = {
    "metrics.get_metrics": ["text/plain"],
    "docs.get_docs": ["text/html"],
    "docs.get_docs_asset": ["text/javascript", "text/css", "image/png"],
}

REASONS = {
    200: "OK",
    201: "created",
    204: "done, no content",
    304: "not modified: the resource still has the ETag of If-None-Match",
    400: "bad or missing parameter, malformed body, credentials in the URL or of two kinds",
    401: "not authenticated",
    403: "authenticated but not allowed, or a cross-site write",
    404: "no such resource",
    409: "conflict: the name is taken, or the resource is still referenced",
    412: "precondition failed: If-Match is not the current ETag, nothing changed",
    413: "body too large",
    429: "too many failed logins, or password hashes: retry after Retry-After seconds",
    503: "service unavailable (database down, or too many password checks): retry later",
}
HEADERS = {
    "Link": {"description": 'the next page: <…?after=N&limit=L>; rel="next"', "schema": STRING},
    "ETag": {"description": "the version of the resource, for If-None-Match and If-Match", "schema": STRING},
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}},
    "WWW-Authenticate": {"description": "the authentication schemes", "schema": STRING},
    "Allow": {"description": "the methods of this path", "schema": STRING},
}
CONDITIONS = {
    "If-None-Match": "answer 304 without a body when the resource still has this ETag",
    "If-Match": "change only if the resource still has this ETag, otherwise 412",
}


def schema_of(annotation, components: dict) -> tuple[dict, bool]:
    """The JSON schema of a parameter type, and whether None is allowed (an optional value)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(others) != 1:
            raise TypeError(f"unsupported parameter type: {annotation}")
        return schema_of(others[0], components)[0], True
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        # pydantic's own schema, local definitions lifted to the components
        schema = annotation.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[annotation.__name__] = schema
        return ref(annotation.__name__), False
    for kind in inspect.getmro(annotation) if isinstance(annotation, type) else []:
        if "json_schema" in vars(kind):  # a Kiva type, with its own rules
            return copy.deepcopy(vars(kind)["json_schema"]), False
        if kind in PRIMITIVES:
            return dict(PRIMITIVES[kind]), False
    raise TypeError(f"no JSON schema for parameter type: {annotation}")


def path_parameters(rule, converters: dict) -> tuple[str, list[dict]]:
    """The OpenAPI path ("/stuff/{sid}") and its parameters, typed by their converters."""
    parameters = []
    for converter, name in re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule.rule):
        schema = getattr(converters[converter or "default"], "json_schema", STRING)
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return re.sub(r"<(?:[^>:]+:)?(\w+)>", r"{\1}", rule.rule), parameters


def request_parameters(view, path_names: set[str], components: dict) -> list[tuple[str, dict, bool]]:
    """(name, schema, required) of each parameter a client sends, from the view's signature."""
    params = []
    for name, p in inspect.signature(view).parameters.items():
        if name in path_names or p.annotation in SPECIAL_PARAMETERS:
            continue
        schema, optional = schema_of(p.annotation, components)
        if p.default is not inspect.Parameter.empty and p.default is not None:
            schema["default"] = p.default
        params.append((name, schema, p.default is inspect.Parameter.empty and not optional))
    return params


def request_body(params: list[tuple[str, dict, bool]], param_auth: bool) -> dict | None:
    """The body of a POST/PUT/PATCH: the parameters, as JSON or as a form."""
    properties = {name: schema for name, schema, _ in params}
    if param_auth:  # USER/PASS: credentials in the body, never in the URL (400)
        properties["USER"] = {"type": "string", "description": "login, for parameter authentication"}
        properties["PASS"] = {"type": "string", "format": "password", "description": "its password"}
    if not properties:
        return None
    required = [name for name, _, needed in params if needed]
    # FlaskSimpleAuth refuses a parameter the route does not declare (400): nothing else may come
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    # a model parameter is a JSON value inside a form field (user=<json>)
    models = {name: {"contentType": "application/json"} for name, s, _ in params if "$ref" in s}
    form = {"schema": schema, **({"encoding": models} if models else {})}
    return {
        "required": bool(required),
        "content": {"application/json": {"schema": schema}, "application/x-www-form-urlencoded": form},
    }


def response(
    status: int, schema: dict | None = None, headers: typing.Sequence[str] = (), content: typing.Sequence[str] = ()
) -> dict:
    res: dict = {"description": REASONS.get(status, "")}
    if schema is not None:
        res["content"] = {ct: {"schema": schema} for ct in content or ["application/json"]}
    if headers:
        res["headers"] = {h: {"$ref": f"#/components/headers/{h}"} for h in headers}
    return res


def error(status: int, headers: typing.Sequence[str] = ()) -> dict:
    return response(status, ref("Error"), headers)


def operation(app: fsa.Flask, rule, method: str, decl: declared.Declaration, single: set[str], components: dict):
    """One operation: parameters, body, security and every status it may answer."""
    endpoint = rule.endpoint
    status, schema, sql_statuses = RESULTS.get(endpoint, UNDESCRIBED)
    path, path_params = path_parameters(rule, app.url_map.converters)
    params = request_parameters(decl.view, set(rule.arguments), components)
    authz = [a for a in decl.authz if a is not None]
    is_open = authz == ["OPEN"]
    authn = decl.authn or app.config["FSA_AUTH"]
    several = len((rule.methods or set()) - AUTOMATIC_METHODS) > 1  # /login: GET and POST, one function
    blueprint, function = endpoint.split(".")
    op: dict = {"operationId": function + (f"_{method.lower()}" if several else ""), "tags": [blueprint]}
    # the summary is the route's own comment, "# GET /stuff: all stuff, or those matching…",
    # its lines joined without their "#"
    comment = " ".join(line.lstrip("#").strip() for line in (inspect.getcomments(decl.view) or "").splitlines())
    if ": " in comment:
        op["summary"] = comment.split(": ", 1)[1].strip()
    if decl.view.__doc__:
        op["description"] = inspect.cleandoc(decl.view.__doc__)
    if endpoint not in RESULTS:
        op["x-kiva-undescribed"] = "no entry in openapi.RESULTS: its answer is unknown"
    op["x-kiva-authz"] = [list(a) if isinstance(a, tuple) else a for a in authz] or ["CLOSE"]
    op["security"] = [] if is_open else [{SCHEMES[a]: []} for a in authn if a in SCHEMES]
    parameters = list(path_params)
    is_single = path in single
    if method in BODY_METHODS:
        body = request_body(params, not is_open and "param" in authn)
        if body:
            op["requestBody"] = body
    else:
        for name, s, needed in params:
            parameters.append({"name": name, "in": "query", "required": needed, "schema": s})
    if is_single:
        condition = "If-None-Match" if method == "GET" else "If-Match"
        parameters.append({"name": condition, "in": "header", "required": False, "schema": STRING})
        parameters[-1]["description"] = CONDITIONS[condition]
    if parameters:
        op["parameters"] = parameters
    # the answers: success, then every error this route's declarations allow
    headers = ["Link"] if "limit" in {name for name, _, _ in params} else []
    headers += ["ETag"] if is_single and method == "GET" else []
    responses = {str(status): response(status, schema, headers, CONTENT_TYPES.get(endpoint, []))}
    if is_single and method == "GET":
        responses["304"] = {"description": REASONS[304], "headers": {"ETag": {"$ref": "#/components/headers/ETag"}}}
    statuses = {400} | sql_statuses
    if not is_open:
        statuses |= {401}
    if not is_open and {"basic", "param"} & set(authn) or endpoint in ratelimit.HASHING_ENDPOINTS:
        statuses |= {429}
    if not is_open and authz != ["AUTH"] or method in WRITE_METHODS:
        statuses |= {403}
    if rule.arguments:
        statuses |= {404}
    if is_single and method in WRITE_METHODS:
        statuses |= {412}
    if method in BODY_METHODS:
        statuses |= {413}
    if endpoint not in STATIC:
        statuses |= {503}
    retry = {429: ["Retry-After"], 503: ["Retry-After"], 401: ["WWW-Authenticate"]}
    for code in sorted(statuses):
        responses[str(code)] = error(code, retry.get(code, []))
    if endpoint == "service.get_health":  # its 503 still says what is down
        health = {"allOf": [ref("Error"), ref("Health")]}
        responses["503"] = response(503, health, ["Retry-After"])
    op["responses"] = responses
    return path, op


def generate(app: fsa.Flask) -> dict:
    """The whole document, from the route table and the routes' declarations."""
    decls = declared.declarations(app)
    rules = list(app.url_map.iter_rules())
    missing = [r.endpoint for r in rules if r.endpoint not in decls]
    if missing:  # registered before declared.record(app), or around it
        raise RuntimeError(f"routes whose declarations were not recorded (declared.py): {missing}")
    # single resources: a path ending with an id whose GET answers one object, not a list
    single = {
        path_parameters(r, app.url_map.converters)[0]
        for r in rules
        if "GET" in (r.methods or set())
        and r.rule.endswith(">")
        and "$ref" in (RESULTS.get(r.endpoint, UNDESCRIBED)[1] or {})
    }
    components: dict = dict(copy.deepcopy(SCHEMAS))
    paths: dict[str, dict] = {}
    for r in sorted(rules, key=lambda r: r.rule):
        for method in sorted((r.methods or set()) - AUTOMATIC_METHODS):
            path, op = operation(app, r, method, decls[r.endpoint], single, components)
            paths.setdefault(path, {})[method.lower()] = op
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    if len(ids) != len(set(ids)):
        raise RuntimeError(f"operation ids used twice: {sorted(i for i in ids if ids.count(i) > 1)}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": app.name,
            "version": VERSION,
            "description": (
                "Kiva, the reference back-end of the course. Generated from the route table. "
                "Every parameter may come as a query or form parameter or in a JSON body "
                "(USER/PASS: in the body only). A method a path does not list answers 405 "
                'with an Allow header. Errors are JSON: {"error": "…"}.'
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "FlaskSimpleAuth token from /login"},
            },
            "headers": HEADERS,
            "responses": {"MethodNotAllowed": error(405, ["Allow"])},
        },
    }


def init_app(app: fsa.Flask):
    """Generate the document once the blueprints are registered."""
    app.extensions[DOCUMENT] = generate(app)


# GET /openapi.json: this API, described in OpenAPI 3.1
@blueprint.get("/openapi.json", authz="OPEN")
def get_openapi():
    document = dict(flask.current_app.extensions[DOCUMENT])
    # behind a prefix (Apache's /api), the API is there: SCRIPT_NAME says so
    document["servers"] = [{"url": flask.request.script_root or "/"}]
    return document, 200

"""GET /openapi.json: the OpenAPI 3.1 document of Kiva, generated at start-up from the route table.

Nothing here lists the routes. Each operation comes from `app.url_map` (paths, methods,
path converters), what the route declared to FlaskSimpleAuth (declared.py: `authz`,
`authn`, the view function) and the view function's signature: parameter names, types
(the Kiva types of model.py carry their JSON schema, the pydantic `User` its own) and
defaults (a parameter with one is optional). The error statuses follow from the same
declarations (a non-OPEN route may answer 401, an ADMIN or object-permission route 403…).

What the signature cannot say, each route declares next to itself with contract.answers:
the success status, the shape of the answer (the pydantic models of model.py), the
conflicts (409) or missing references (404) its SQL may meet. A route without one is
still in the document, marked `x-kiva-undescribed`, and tests/test_openapi.py fails on
it: the document cannot miss a route.

Credentials: basic and bearer are the document's security schemes. FlaskSimpleAuth's
"param" scheme (USER/PASS body fields) has no OpenAPI form: the server still takes it
(API.md), the document does not list it as body fields, which a client would send next
to an Authorization header (a 400: one kind of credentials per request).
"""

import copy
import inspect
import re
import types
import typing

import flask
import FlaskSimpleAuth as fsa
import pydantic

from production import VERSION, contract, declared, etag, ratelimit
from production.context import AUTOMATIC_METHODS, BODY_METHODS, METHODS, WRITE_METHODS

blueprint = fsa.Blueprint("openapi", __name__)

DOCUMENT = "kiva.openapi"  # the app.extensions key of the generated document
# FlaskSimpleAuth's special parameters: given by the framework, not sent by a client
SPECIAL_PARAMETERS = {fsa.CurrentUser}
# FlaskSimpleAuth authentication schemes → OpenAPI security schemes ("param": none, see above)
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


STRING = {"type": "string"}
SCHEMAS = {"Error": obj(["error"], error=STRING)}
# a route that declared no answer (contract.answers) is still documented, marked: tests/test_openapi.py fails on it
UNDESCRIBED = contract.Answer(200)
# If-Match: the syntax production/etag.py checks (RFC 9110); anything else is a 400
IF_MATCH = {"type": "string", "pattern": etag.IF_MATCH}

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
    411: "a chunked body (Transfer-Encoding) refused by the production front: send Content-Length",
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


def model_schema(model: type[pydantic.BaseModel], components: dict) -> dict:
    """A pydantic model's schema in the components (its local definitions lifted), by reference."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return ref(model.__name__)


def body_schema(body, components: dict) -> dict | None:
    """The JSON schema of an answer's body as contract.answers declares it."""
    if body is None or isinstance(body, dict):
        return body
    if typing.get_origin(body) is list:
        return {"type": "array", "items": body_schema(typing.get_args(body)[0], components)}
    if isinstance(body, type) and issubclass(body, pydantic.BaseModel):
        return model_schema(body, components)
    return dict(PRIMITIVES[body])


def schema_of(annotation, components: dict) -> tuple[dict, bool]:
    """The JSON schema of a parameter type, and whether None is allowed (an optional value)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(others) != 1:
            raise TypeError(f"unsupported parameter type: {annotation}")
        return schema_of(others[0], components)[0], True
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return model_schema(annotation, components), False
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


def operation_id(function: str, method: str) -> str:
    """The operation's name in generated clients: the view's name, which begins with its
    method (post_stuff), that method made the operation's own when the view serves
    several (put_stuff_sid for PUT and PATCH: patch_stuff_sid, not put_stuff_sid_patch)."""
    verb, _, rest = function.partition("_")
    if verb.upper() in METHODS and rest:
        return f"{method.lower()}_{rest}"
    return f"{function}_{method.lower()}"


def request_body(params: list[tuple[str, dict, bool]], one_of: typing.Sequence[str]) -> dict | None:
    """The body of a POST/PUT/PATCH: the parameters, as a JSON object."""
    if not params:
        return None
    required = [name for name, _, needed in params if needed]

    # FlaskSimpleAuth refuses a parameter the route does not declare (400): nothing else
    # may come; in JSON, null for an optional parameter is the parameter left out
    properties = {name: s if needed else nullable(s) for name, s, needed in params}
    schema: dict = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if one_of:  # a PATCH with nothing to change (or only nulls) is a 400
        schema["anyOf"] = [{"required": [n], "properties": {n: {"not": {"type": "null"}}}} for n in one_of]
    # one media type, JSON: the server takes the same fields as a form too (below), but a
    # required body of two media types breaks the most used Python client generator
    # (openapi-python-client 0.29: its modules fail at import, its issue #1451), and a
    # client sends one of them anyway (tests/test_generated_client.py)
    if any("$ref" in s for _, s, _ in params):
        # a model parameter (user): in a form, a field holding the model's JSON
        form = ", ".join(f"{name}=<json>" for name, _, _ in params)
        also = f"a form whose field holds the JSON ({form})"
    else:
        also = "the same fields as a form (application/x-www-form-urlencoded)"
    return {
        "required": bool(required or one_of),
        "content": {"application/json": {"schema": schema}},
        "description": f"JSON; the server also takes {also}",
    }


def nullable(schema: dict) -> dict:
    """An optional parameter's schema in a JSON body: its type, or null (None, as if left out)."""
    if isinstance(schema.get("type"), str) and "default" not in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return schema


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
    answer = contract.answer_of(decl.view) or UNDESCRIBED
    path, path_params = path_parameters(rule, app.url_map.converters)
    params = request_parameters(decl.view, set(rule.arguments), components)
    authz = [a for a in decl.authz if a is not None]
    is_open = authz == ["OPEN"]
    authn = decl.authn or app.config["FSA_AUTH"]
    blueprint, function = endpoint.split(".")
    op: dict = {"operationId": operation_id(function, method), "tags": [blueprint]}
    # the summary is the route's own comment, "# GET /stuff: all stuff, or those matching…",
    # its lines joined without their "#"
    comment = " ".join(line.lstrip("#").strip() for line in (inspect.getcomments(decl.view) or "").splitlines())
    if ": " in comment:
        op["summary"] = comment.split(": ", 1)[1].strip()
    if decl.view.__doc__:
        op["description"] = inspect.cleandoc(decl.view.__doc__)
    if answer is UNDESCRIBED:
        op["x-kiva-undescribed"] = "no contract.answers on the route: its answer is unknown"
    op["x-kiva-authz"] = [list(a) if isinstance(a, tuple) else a for a in authz] or ["CLOSE"]
    op["security"] = [] if is_open else [{SCHEMES[a]: []} for a in authn if a in SCHEMES]
    parameters = list(path_params)
    is_single = path in single
    if method in BODY_METHODS:
        body = request_body(params, answer.one_of)
        if body:
            op["requestBody"] = body
    else:
        for name, s, needed in params:
            parameters.append({"name": name, "in": "query", "required": needed, "schema": s})
    if is_single:
        condition = "If-None-Match" if method == "GET" else "If-Match"
        schema = IF_MATCH if condition == "If-Match" else STRING
        parameters.append({"name": condition, "in": "header", "required": False, "schema": schema})
        parameters[-1]["description"] = CONDITIONS[condition]
    if parameters:
        op["parameters"] = parameters
    # the answers: success, then every error this route's declarations allow
    headers = ["Link"] if "limit" in {name for name, _, _ in params} else []
    headers += ["ETag"] if is_single and method == "GET" else []
    body = body_schema(answer.body, components)
    responses = {str(answer.status): response(answer.status, body, headers, answer.media)}
    if is_single and method == "GET":
        responses["304"] = {"description": REASONS[304], "headers": {"ETag": {"$ref": "#/components/headers/ETag"}}}
    statuses = {400} | answer.may
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
    if method in BODY_METHODS:  # 411: deploy/kiva-haproxy.cfg (mod_wsgi refuses chunked bodies)
        statuses |= {411, 413}
    if answer.database:
        statuses |= {503}
    retry = {429: ["Retry-After"], 503: ["Retry-After"], 401: ["WWW-Authenticate"]}
    for code in sorted(statuses):
        responses[str(code)] = error(code, retry.get(code, []))
    if answer.outage is not None:  # a 503 that still says what is down (/health)
        outage = {"allOf": [ref("Error"), body_schema(answer.outage, components)]}
        responses["503"] = response(503, outage, ["Retry-After"])
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
    def one_object(endpoint: str) -> bool:
        body = (contract.answer_of(decls[endpoint].view) or UNDESCRIBED).body
        return isinstance(body, type) and issubclass(body, pydantic.BaseModel)

    single = {
        path_parameters(r, app.url_map.converters)[0]
        for r in rules
        if "GET" in (r.methods or set()) and r.rule.endswith(">") and one_object(r.endpoint)
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
@contract.answers(200, {"type": "object"}, database=False)
def get_openapi():
    document = dict(flask.current_app.extensions[DOCUMENT])
    # behind a prefix (Apache's /api), the API is there: SCRIPT_NAME says so
    document["servers"] = [{"url": flask.request.script_root or "/"}]
    return document, 200

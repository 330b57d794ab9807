"""What each route declares to FlaskSimpleAuth (`authz`, `authn`, the view function), kept by endpoint.

FlaskSimpleAuth 36 turns these declarations into wrappers and keeps no public record of
them; the OpenAPI generator (openapi.py) needs them. `record(app)` wraps the app's
public `add_url_rule`, through which every blueprint route passes, and notes what each
route declares before handing it on unchanged. It must run before any blueprint is
registered: a route added before would be missing here, which openapi.py refuses.
"""

import dataclasses
import typing

import flask


@dataclasses.dataclass(frozen=True)
class Declaration:
    """A route's declaration: authorization (a list, as FSA normalises it), authentication schemes."""

    authz: list
    authn: list[str] | None  # None: the configuration's FSA_AUTH
    view: typing.Callable  # the function as written, with its signature and annotations


ROUTES = "kiva.declared"  # the app.extensions key of the endpoint → Declaration table


def record(app: flask.Flask) -> dict[str, Declaration]:
    """Note every route's declaration from now on, in app.extensions[ROUTES]."""
    routes: dict[str, Declaration] = app.extensions.setdefault(ROUTES, {})
    add_url_rule = app.add_url_rule

    def declaring_add_url_rule(rule, endpoint=None, view_func=None, authz=None, authn=None, **options):
        name = endpoint or (view_func.__name__ if view_func else None)
        if name and view_func:
            authz_list = [authz] if authz is None or isinstance(authz, (str, int, tuple)) else list(authz)
            authn_list = [authn] if isinstance(authn, str) else authn
            routes[name] = Declaration(authz_list, authn_list, view_func)
        return add_url_rule(rule, endpoint, view_func, authz=authz, authn=authn, **options)

    app.add_url_rule = declaring_add_url_rule  # type: ignore[method-assign,assignment]
    return routes


def declarations(app: flask.Flask) -> dict[str, Declaration]:
    """The endpoint → Declaration table of an app set up with record()."""
    return app.extensions[ROUTES]

"""Users and authentication: register, login (tokens), who am I, and /users for admins."""

import time
import typing

import flask
import FlaskSimpleAuth as fsa

import auth
from database import db
from model import Int64, Limit, Name, Password, Pattern, User, UserInfo
from production import etag
from production.contract import answers, created
from production.paging import ALL, DEFAULT_LIMIT, FIRST, page

# the running app as FlaskSimpleAuth's Flask: its methods (current_user…) typed
current_app = typing.cast(fsa.Flask, flask.current_app)

blueprint = fsa.Blueprint("users", __name__)


# POST /register: anyone may create an account, without privileges
@blueprint.post("/register", authz="OPEN")
@answers(201, created("uid"), may=[409])
def post_register(login: Name, pword: Password):
    # a taken login costs no bcrypt hash (the insert below still settles a race)
    fsa.checkVal(not auth.user_row(login), f"login already taken: {login}", 409)
    uid = db.add_user(login=login, pword=auth.hash_password(pword), isadmin=False, now=time.time())
    fsa.checkVal(uid, f"login already taken: {login}", 409)
    return {"uid": uid}, 201


# GET /login, POST /login: a token for the user authenticated with a password
@blueprint.route("/login", methods=["GET", "POST"], authz="AUTH", authn=["basic", "param"])
@answers(200, {"type": "string", "description": "a token"})
def get_login(user: fsa.CurrentUser):
    auth.wait_for_a_new_token_second(user)
    return fsa.jsonify(current_app.create_token(user)), 200


# GET /whoami: the authenticated user, whatever the scheme
@blueprint.get("/whoami", authz="AUTH")
@answers(200, {"type": "string", "description": "the login"})
def get_whoami(user: fsa.CurrentUser):
    return fsa.jsonify(user), 200


# GET /qui-suis-je: the authenticated user, with a token only
@blueprint.get("/qui-suis-je", authz="AUTH", authn="token")
@answers(200, {"type": "string", "description": "the login"})
def get_qui_suis_je(user: fsa.CurrentUser):
    return fsa.jsonify(user), 200


# GET /hello: any authenticated user
@blueprint.get("/hello", authz="AUTH")
@answers(200, str)
def get_hello(user: fsa.CurrentUser):
    return fsa.jsonify(f"hello {user}!"), 200


# GET /admin: administrators only
@blueprint.get("/admin", authz="ADMIN")
@answers(200, str)
def get_admin(user: fsa.CurrentUser):
    return fsa.jsonify(f"hello admin {user}!"), 200


# GET /users: all users, or those whose login matches a LIKE pattern, by pages
@blueprint.get("/users", authz="ADMIN")
@answers(200, list[UserInfo])
def get_users(filter: Pattern = ALL, after: Int64 = FIRST, limit: Limit = DEFAULT_LIMIT):
    return page(db.get_user_page, "uid", after, limit, filter=filter)


# POST /users: an administrator adds a user
@blueprint.post("/users", authz="ADMIN")
@answers(201, created("uid"), may=[409])
def post_users(user: User):
    pword = auth.hash_password(user.password)
    uid = db.add_user(login=user.login, pword=pword, isadmin=user.isAdmin, now=time.time())
    fsa.checkVal(uid, f"login already taken: {user.login}", 409)
    return {"uid": uid}, 201


# GET /users/<uid>: the user themself or an administrator
@blueprint.get("/users/<uid>", authz=("user", "uid"))
@answers(200, UserInfo)
def get_users_uid(uid: int):
    res = db.get_user_uid(uid=uid)
    fsa.checkVal(res, f"no such user: {uid}", 404)
    return etag.resource(res, "uid")


# PATCH /users/<uid>: the user changes their password (sending the current one); an
# administrator changes anybody's password and isadmin
@blueprint.patch("/users/<uid>", authz=("user", "uid"))
@answers(204, one_of=["password", "isadmin"])
def patch_users_uid(
    uid: int,
    user: fsa.CurrentUser,
    password: Password | None = None,
    current: str | None = None,
    isadmin: bool | None = None,
):
    fsa.checkVal(password is not None or isadmin is not None, "nothing to change: password? isadmin?", 400)
    fsa.checkVal(isadmin is None or auth.is_admin(user), "only an administrator may change isadmin", 403)
    row = auth.user_row(user)
    if password is not None and row is not None and row["uid"] == uid:  # one's own password
        if current is None:
            raise fsa.ErrorResponse("changing one's password needs the current one: current", 400)
        fsa.checkVal(auth.check_current_password(user, current), "the current password does not match", 403)
    pword = auth.hash_password(password) if password is not None else None
    etag.write(
        db.get_user_uid,
        db.patch_user_uid,
        f"no such user: {uid}",
        {"uid": uid},
        pword=pword,
        isadmin=isadmin,
        now=time.time(),
    )
    return "", 204


# PUT /users/<uid>: an administrator replaces a user
@blueprint.put("/users/<uid>", authz="ADMIN")
@answers(204, may=[409])
def put_users_uid(uid: int, user: User):
    fsa.checkVal(user.uid in (None, uid), "inconsistent user id", 400)
    pword = auth.hash_password(user.password)
    etag.write(
        db.get_user_uid,
        db.upd_user_uid,
        f"no such user: {uid}",
        {"uid": uid},
        login=user.login,
        pword=pword,
        isadmin=user.isAdmin,
        now=time.time(),
    )
    return "", 204


# DELETE /users/<uid>: an administrator deletes a user who owns no object
@blueprint.delete("/users/<uid>", authz="ADMIN")
@answers(204, may=[409])
def delete_users_uid(uid: int):
    etag.write(db.get_user_uid, db.del_user_uid, f"no such user: {uid}", {"uid": uid})
    return "", 204

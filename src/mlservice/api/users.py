"""``/resource/users``: admins create, list, change and delete accounts; users their password.

Any change to an account (password, role, deletion) revokes the tokens issued
for it before (see :mod:`mlservice.accounts`).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from ..accounts import NewUser, UserChange
from ..bodies import decode
from ..errors import BadRequest, Conflict, Forbidden
from ..security import Identity
from .auth import client_address, current_identity, require_token
from .parsing import json_body
from .services import services

bp = Blueprint("users", __name__, url_prefix="/resource/users")


def _shown(identity: Identity, disabled: bool = False) -> dict[str, str | bool | None]:
    """An account as the API shows it (the contract's ``User``)."""
    return {
        "username": identity.username,
        "role": identity.role,
        "account_id": identity.account_id,
        "disabled": disabled,
    }


@bp.post("")
@require_token(admin=True)
def create_user() -> Response:
    """Create a user: ``{"username", "password", "role"}`` → 201 with their new account id."""
    body = decode(json_body(), NewUser)
    identity = services().accounts.create(body.username, body.password, body.role)
    response = jsonify(_shown(identity))
    response.status_code = 201
    response.headers["Location"] = url_for("users.list_users")
    return response


@bp.get("")
@require_token(admin=True)
def list_users() -> Response:
    """Every account: its user name, role, account id and whether it is disabled."""
    accounts = services().accounts
    identities = accounts.list()
    disabled = accounts.disabled_names([identity.username for identity in identities])
    return jsonify(users=[_shown(i, i.username in disabled) for i in identities])


@bp.patch("/<username:username>")
@require_token()
def update_user(username: str) -> Response:
    """Change a password and/or role, or (admins) disable or enable the account → 200 with
    the account; the old tokens stop working (disabling revokes them too).

    Admins may change any account (not their own role); a user only their own
    password, giving ``current_password``. Anyone else's account is 403 for a
    user, whether it exists or not. ``current_password`` is checked under the
    failed-login counters of logins (429 past them).
    """
    caller = current_identity()
    change = decode(json_body(), UserChange)
    password, role, current_password = change.password, change.role, change.current_password
    if not caller.is_admin:
        if username != caller.username:
            raise Forbidden("you may change only your own account")
        if role is not None:
            raise Forbidden("only an admin may change a role")
        if change.disabled is not None:
            raise Forbidden("only an admin may disable or enable an account")
        if password is not None and current_password is None:
            raise BadRequest("send current_password (your password now) to change your password")
    elif username == caller.username and role is not None and role != caller.role:
        raise Conflict("you cannot change your own role")
    elif username == caller.username and change.disabled:
        raise Conflict("you cannot disable your own account")
    accounts = services().accounts
    if change.disabled is None or password is not None or role is not None:
        identity = accounts.update(
            username, password, role, current_password=current_password, address=client_address()
        )
    if change.disabled is not None:
        identity = accounts.set_disabled(username, change.disabled)
    return jsonify(_shown(identity, accounts.is_disabled(username)))


@bp.delete("/<username:username>")
@require_token(admin=True)
def delete_user(username: str) -> tuple[str, int]:
    """Delete an account (not your own) with its data sets, models and registered models → 204."""
    if username == current_identity().username:
        raise Conflict("you cannot delete your own account")
    ctx = services()
    ctx.accounts.delete_account(
        ctx.datasets, ctx.models, username, before_models=ctx.registry.delete_owned
    )
    return "", 204

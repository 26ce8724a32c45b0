"""Shell commands: configuration files and user accounts.

    mlservice init-config          write missing config from templates
    mlservice check-config         validate configuration and Redis users
    mlservice nginx-conf PATH      write NGINX's settings (CORS origins, body cap)
    mlservice users add NAME [--role admin|user] [--password ...]
    mlservice users list
    mlservice users delete NAME

(``users add`` of an existing user resets their password and role and revokes
their tokens; ``users delete`` deletes their data sets and models too.)

Commands reach the stack ``make run`` runs from this checkout: its Redis port
and config files are read from var/stack.json (``--run-dir`` for another run
directory), so they never land on another stack's Redis on the default port.
MLSERVICE_CONFIG, MLSERVICE_REDIS_CONFIG, MLSERVICE_REDIS_HOST or
MLSERVICE_REDIS_PORT in the environment point elsewhere, and win.

(``mlservice`` is the console script ``pip install`` makes; ``python -m
mlservice`` is the same.)
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import redis

from . import accounts, nginx_conf, preflight, redis_client, runstate
from .config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_RUN_DIR,
    ConfigError,
    Settings,
    ensure_config_file,
    get_settings,
)
from .errors import ServiceError

#: Variables that point a command at a stack: set in the shell, they win over var/.
STACK_VARIABLES = (
    "MLSERVICE_CONFIG",
    "MLSERVICE_REDIS_CONFIG",
    "MLSERVICE_REDIS_HOST",
    "MLSERVICE_REDIS_PORT",
)


class Commands(click.Group):
    """The command group: configuration and Redis problems end in one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        except redis.RedisError as exc:
            raise click.ClickException(_redis_problem(exc)) from None


def _redis_problem(exc: redis.RedisError) -> str:
    """What went wrong with Redis, naming where the CLI looked and which settings say so."""
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{preflight.redis_location(get_settings())}: {first_line}{_which_stack()}"


def _follow_running_stack(run_dir: Path) -> str:
    """Point this process at the stack make run runs from ``run_dir``; say which, for errors.

    Nothing changes when the environment names a stack itself, or when no
    make run of that directory is running.
    """
    if any(os.environ.get(name, "").strip() for name in STACK_VARIABLES):
        return ""
    state = runstate.running(run_dir)
    if state is None:
        return f" (no make run is running from {run_dir}: start it, or set MLSERVICE_REDIS_PORT)"
    os.environ.update(state.environment())
    get_settings.cache_clear()
    return f" (the make run at {state.url}, from {run_dir / runstate.STATE_FILE})"


def _which_stack() -> str:
    """Which stack the command tried to reach, as :func:`main` found it (for error messages)."""
    ctx = click.get_current_context(silent=True)
    return (ctx.find_root().obj or "") if ctx is not None else ""


def _check_app_login(settings: Settings) -> None:
    """The app user can log in to Redis; a failure names the stack the command looked for."""
    try:
        preflight.check_app_login(settings)
    except ConfigError as exc:
        raise ConfigError(f"{exc}{_which_stack()}") from None


def _settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _accounts() -> accounts.Accounts:
    """The accounts in Redis as the app user, logged in once up front so a problem is one
    clear line.

    Accounts stored by an older version are upgraded first, as the service does at start.
    """
    settings = _settings_or_exit()
    _check_app_login(settings)
    users = accounts.Accounts(redis_client.connect(settings.redis))
    users.upgrade()
    return users


@click.group(cls=Commands)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_RUN_DIR,
    help="Reach the stack make run runs from this directory (default: var/ of this checkout).",
)
@click.pass_context
def main(ctx: click.Context, run_dir: Path) -> None:
    """ML Service administration.

    Commands reach the stack make run runs from this checkout (its ports are
    in var/stack.json) unless MLSERVICE_CONFIG, MLSERVICE_REDIS_CONFIG,
    MLSERVICE_REDIS_HOST or MLSERVICE_REDIS_PORT point elsewhere.
    """
    ctx.obj = _follow_running_stack(run_dir)


@main.command("init-config")
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    default=DEFAULT_CONFIG_PATH,
    show_default=True,
    help="Where src/config.properties lives.",
)
def init_config(path: Path) -> None:
    """Copy config.properties.template to PATH when PATH does not exist yet."""
    if ensure_config_file(path):
        click.echo(f"mlservice: wrote {path} from config.properties.template", err=True)


@main.command("check-config")
@click.option("--redis/--no-redis", default=True, help="Also log in to Redis as both users.")
def check_config(redis: bool) -> None:
    """Validate the configuration; exit 1 with one line naming the problem."""
    settings = _settings_or_exit()
    try:
        preflight.check_password_hashing(settings)
        if redis:
            preflight.check_default_model(settings)
            preflight.check_openapi_file(settings)
            _check_app_login(settings)
            preflight.check_redis_users(settings, wait_seconds=0)
        else:
            preflight.check_default_model(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("configuration OK")


@main.command("nginx-conf")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def write_nginx_conf(path: Path) -> None:
    """Write NGINX's settings (CORS origins, largest body) from the service's to PATH."""
    nginx_conf.write(_settings_or_exit(), path)
    click.echo(f"mlservice: wrote {path}", err=True)


@main.group("users")
def users_group() -> None:
    """Manage user accounts."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(accounts.ROLES), default="user", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def add_user(username: str, role: str, password: str) -> None:
    """Create a user, or reset an existing user's password and role (revoking their tokens)."""
    try:
        _accounts().set(username, password, role)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"user {username!r} ({role}) saved")


@users_group.command("list")
def list_users() -> None:
    """Print every user, role and account id (what the user's data is keyed by)."""
    for identity in _accounts().list():
        click.echo(f"{identity.username}\t{identity.role}\t{identity.account_id}")


@users_group.command("delete")
@click.argument("username")
def delete_user(username: str) -> None:
    """Delete a user with their data sets, models and registered models (a user made again
    under the name is a new account)."""
    from .context import build_context  # the data stores: only this command needs them

    settings = _settings_or_exit()
    _check_app_login(settings)
    ctx = build_context(settings)
    try:
        datasets, models = ctx.accounts.delete_account(
            ctx.datasets, ctx.models, username, before_models=ctx.registry.delete_owned
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"user {username!r} deleted, with {datasets} data set(s) and {models} model(s)")

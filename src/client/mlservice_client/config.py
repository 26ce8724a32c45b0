"""Where ``mls login`` keeps the service's URL and token, and how the environment overrides them.

The token is a credential: the file is written with mode 0600 (owner only),
through a temporary file renamed into place, so it is never readable by
others, not even for a moment, and never half-written. ``MLS_URL`` and
``MLS_TOKEN`` win over the file, for scripts and CI.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The file's name inside the configuration directory.
FILENAME = "credentials.json"


@dataclass(frozen=True)
class Login:
    """A service to talk to and the token to talk to it with."""

    url: str | None
    token: str | None
    username: str | None = None


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's configuration directory for mls (``$XDG_CONFIG_HOME/mlservice`` on Linux)."""
    if sys.platform == "win32" and env.get("APPDATA"):
        return Path(env["APPDATA"]) / "mlservice"
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "mlservice"


def credentials_path(env: Mapping[str, str] = os.environ) -> Path:
    """The file ``mls login`` writes."""
    return config_dir(env) / FILENAME


def save(login: Login, env: Mapping[str, str] = os.environ) -> Path:
    """Keep ``login`` for later commands, readable by its owner only; the file's path."""
    path = credentials_path(env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # an old file of that name may have had another mode
        with os.fdopen(descriptor, "w") as out:
            json.dump({"url": login.url, "token": login.token, "username": login.username}, out)
            out.write("\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return path


def saved(env: Mapping[str, str] = os.environ) -> Login:
    """What ``mls login`` kept (nothing: a Login of ``None`` values)."""
    try:
        data = json.loads(credentials_path(env).read_text())
    except (FileNotFoundError, ValueError):
        return Login(None, None)
    if not isinstance(data, dict):
        return Login(None, None)
    return Login(data.get("url"), data.get("token"), data.get("username"))


def current(url: str | None = None, env: Mapping[str, str] = os.environ) -> Login:
    """The URL and token a command uses: ``url`` or ``MLS_URL``, ``MLS_TOKEN``, else the file's.

    The saved token is used only with the URL it was saved for.
    """
    kept = saved(env)
    chosen = url or env.get("MLS_URL") or kept.url
    token = env.get("MLS_TOKEN") or (kept.token if chosen == kept.url else None)
    return Login(chosen.rstrip("/") if chosen else None, token, kept.username)


def forget(env: Mapping[str, str] = os.environ) -> bool:
    """Remove the saved login; whether there was one."""
    try:
        credentials_path(env).unlink()
    except FileNotFoundError:
        return False
    return True

"""The NGINX settings that follow from the service's own: CORS origins, body cap, client limits.

NGINX, not the app, sends the CORS headers, so that its own answers (413 body
too large, 429 rate limited, 503 API unreachable) reach a page on another
origin as readable errors too. Which origins are allowed is a service setting
(``[cors] allowed_origins``), validated with the rest at start; this module
turns it into an NGINX ``map``, in a file the server template includes
(with the body cap, the client timeouts and the connections per address)
(``nginx/templates/ml-service.conf.template``). ``make run`` writes the file
into its run directory; in Docker the api container writes it into a volume
the nginx container reads (``mlservice nginx-conf PATH``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .config import Settings

HEADER = (
    "# Written by `mlservice nginx-conf` from src/config.properties ([cors] allowed_origins,\n"
    "# [service] max_upload_mb, [limits] client_timeout_seconds and connections_per_address).\n"
    "# Do not edit: change the settings and restart.\n"
)

#: Room for a multipart envelope around an upload of exactly max_upload_mb.
MULTIPART_SLACK_MB = 1
#: Room above the largest upload for an answer NGINX keeps on disk for a slow reader:
#: a CSV download with its formula cells escaped is a little larger than the upload.
ANSWER_SLACK_MB = 1024

# The map's key is "<Origin header>|<scheme>://<Host header>"; each rule is a
# regular expression over it. The value is what Access-Control-Allow-Origin says.
OWN_ORIGIN_RULE = '    "~^https?://([^|/]+)\\|https?://\\1$" $http_origin;  # the service itself\n'
ANY_ORIGIN_RULE = '    "~^[^|]+\\|" "*";\n'


def origin_rule(origin: str) -> str:
    """One ``map`` line allowing ``origin`` (or any origin, for ``*``)."""
    if origin == "*":
        return ANY_ORIGIN_RULE
    return f'    "~^{re.escape(origin)}\\|" $http_origin;\n'


def render(settings: Settings) -> str:
    """The http-level NGINX configuration for these settings."""
    origins = settings.cors.allowed_origins
    body_cap = settings.service.max_upload_mb + MULTIPART_SLACK_MB
    timeout = settings.limits.client_timeout_seconds
    return (
        HEADER
        + f"client_max_body_size {body_cap}m;\n\n"
        + "# How long NGINX waits for a client: its headers, each read of its body, each\n"
        + "# write of the answer. Bodies and answers pass through NGINX whole, so a slow\n"
        + "# client holds one NGINX connection, never an API worker.\n"
        + f"client_header_timeout {timeout}s;\n"
        + f"client_body_timeout {timeout}s;\n"
        + f"send_timeout {timeout}s;\n"
        + f"limit_conn mlservice_conn {settings.limits.connections_per_address};\n"
        + "# The largest answer NGINX takes from the API ahead of a slow reader, on disk.\n"
        + f"proxy_max_temp_file_size {settings.service.max_upload_mb + ANSWER_SLACK_MB}m;\n\n"
        + "# $cors_allow_origin: the request's Origin if it may call the API, else empty\n"
        + "# (and then NGINX sends no CORS header at all).\n"
        + 'map "$http_origin|$scheme://$http_host" $cors_allow_origin {\n'
        + '    default "";\n'
        + OWN_ORIGIN_RULE
        + "".join(origin_rule(origin) for origin in origins)
        + "}\n"
    )


def write(settings: Settings, path: Path) -> None:
    """Write the file whole or not at all (NGINX may be reading the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(render(settings))
    temporary.chmod(0o644)
    temporary.replace(path)

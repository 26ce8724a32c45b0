#!/bin/sh
# Entrypoint of the nginx container: write the listen directive (plain HTTP,
# or HTTPS when MLSERVICE_TLS_CERT and MLSERVICE_TLS_KEY name a mounted
# certificate and key; one line on stderr says which), then the image's own
# entrypoint renders the templates and runs NGINX.
set -eu
sh /usr/local/lib/mlservice/render-listen.sh "$MLSERVICE_LISTEN_CONF"
exec /docker-entrypoint.sh "$@"

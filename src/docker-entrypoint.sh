#!/bin/sh
# Entrypoint of the api and worker containers: write the missing service
# config from its template (and, in the api, NGINX's settings derived from
# it), then run the command.
set -eu
config=${MLSERVICE_CONFIG:-/etc/mlservice/config.properties}
if [ ! -e "$config" ]; then
  # api and worker start together on a shared volume: write beside the file
  # and rename, so neither ever reads a half-written config. umask 077 only
  # here (a subshell): the config holds secrets, but the service itself must
  # run with the default 022, or the artifact directories and bundles it
  # creates are 0700/0600 and NGINX (another uid) cannot send downloads.
  (
    umask 077
    tmp="$config.$(hostname).tmp"
    cp /app/config.properties.template "$tmp"
    mv -f "$tmp" "$config"
  )
fi
if [ -n "${MLSERVICE_NGINX_SETTINGS:-}" ]; then
  # CORS origins and the body cap, for the nginx container (which starts
  # after the api is healthy). A bad setting stops here, in one line.
  # Every api replica writes this file on the shared volume, each with the
  # same pid: each writes its own copy, named after its host (container), and
  # renames it into place, so no two share a temporary file and NGINX never
  # reads half of one. The replicas' files are the same (same settings).
  own="$(dirname "$MLSERVICE_NGINX_SETTINGS")/.$(hostname).$(basename "$MLSERVICE_NGINX_SETTINGS")"
  mlservice nginx-conf "$own"
  mv -f "$own" "$MLSERVICE_NGINX_SETTINGS"
fi
exec "$@"

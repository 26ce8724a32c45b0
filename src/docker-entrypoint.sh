#!/bin/sh
# Entrypoint of the api and worker containers: write the missing service
# config from its template, then run the command.
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
exec "$@"

#!/bin/sh
# Entrypoint of the api and worker containers: write the missing service
# config from its template, then run the command.
set -eu
umask 077
config=${MLSERVICE_CONFIG:-/etc/mlservice/config.properties}
if [ ! -e "$config" ]; then
  # api and worker start together on a shared volume: write beside the file
  # and rename, so neither ever reads a half-written config.
  tmp="$config.$(hostname).tmp"
  python -m mlservice init-config --path "$tmp"
  mv -f "$tmp" "$config"
fi
exec "$@"

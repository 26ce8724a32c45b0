#!/bin/sh
# Write /etc/mlservice/redis.properties (random passwords, first start only)
# and the ACL file from it, then start Redis. Arguments that start with "-"
# are added to redis-server's; any other command is run as given.
set -eu
dir=/etc/mlservice
sh /opt/mlservice/render-acl.sh "$dir/redis.properties" "$dir/users.acl"
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  # Its AOF and RDB files hold the token- and bundle-signing secret: 0600.
  umask 077
  # redis.conf says protected-mode yes for the native stack on loopback; here
  # the ACL (default user off) protects the container network.
  exec redis-server /opt/mlservice/redis.conf --bind 0.0.0.0 --protected-mode no \
    --dir /data --aclfile "$dir/users.acl" "$@"
fi
exec "$@"

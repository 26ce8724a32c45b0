#!/bin/sh
# Write the Redis ACL file from redis/config.properties.
#
# usage: render-acl.sh CONFIG_FILE [ACL_FILE]
#
# When CONFIG_FILE is missing it is first created from config.properties.template
# (beside this script) with new random passwords, 0600 (it holds them). Without
# ACL_FILE that is all (make run checks the whole configuration before it starts
# Redis). MLSERVICE_REDIS_MASTER_USER, MLSERVICE_REDIS_MASTER_PW,
# MLSERVICE_REDIS_CELERY_USER and MLSERVICE_REDIS_CELERY_PW override the file, as
# they do for the Python side. Used by the native stack (mlservice.stack) and the
# Redis container alike.
set -eu
config=$1
acl=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
umask 077

random_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

if [ ! -f "$config" ]; then
  sed -e "s/^REDIS_MASTER_PW=.*/REDIS_MASTER_PW=$(random_password)/" \
      -e "s/^REDIS_CELERY_PW=.*/REDIS_CELERY_PW=$(random_password)/" \
      "$here/config.properties.template" > "$config"
  echo "render-acl: wrote $config with new random passwords" >&2
fi
[ -n "$acl" ] || exit 0

value() {  # KEY -> the last KEY=VALUE in the file, trimmed
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$config" | tail -n 1 | sed 's/[[:space:]]*$//'
}
# VARIABLE KEY -> what a bad value is blamed on: the variable when set, else the file's key.
origin() {
  eval "given=\${$1:+yes}"
  if [ -n "$given" ]; then echo "environment variable $1"; else echo "$config: $2"; fi
}
fail() { echo "$*" >&2; exit 1; }

master_user=${MLSERVICE_REDIS_MASTER_USER:-$(value MASTER_USER)}
celery_user=${MLSERVICE_REDIS_CELERY_USER:-$(value CELERY_USER)}
celery_user=${celery_user:-celery}
master_pw=${MLSERVICE_REDIS_MASTER_PW:-$(value REDIS_MASTER_PW)}
celery_pw=${MLSERVICE_REDIS_CELERY_PW:-$(value REDIS_CELERY_PW)}

for triple in "MASTER_USER:MLSERVICE_REDIS_MASTER_USER:$master_user" \
              "CELERY_USER:MLSERVICE_REDIS_CELERY_USER:$celery_user"; do
  key=${triple%%:*}; rest=${triple#*:}; variable=${rest%%:*}; name=${rest#*:}
  echo "$name" | grep -Eq '^[A-Za-z0-9_.-]{1,64}$' && [ "$name" != default ] \
    || fail "$(origin "$variable" "$key") = '$name' is not allowed; use letters, digits, '_', '.', '-' and not 'default'"
done
for triple in "REDIS_MASTER_PW:MLSERVICE_REDIS_MASTER_PW:$master_pw" \
              "REDIS_CELERY_PW:MLSERVICE_REDIS_CELERY_PW:$celery_pw"; do
  key=${triple%%:*}; rest=${triple#*:}; variable=${rest%%:*}; pw=${rest#*:}
  echo "$pw" | grep -Eq '^[A-Za-z0-9_.~-]{8,}$' \
    || fail "$(origin "$variable" "$key") must be at least 8 characters of letters, digits, '_', '.', '~', '-'"
done

# The app user may do everything; the Celery user only touches the keys the
# Redis transport and result backend use (queues are named celery*), and no
# dangerous commands. The default (anonymous) user is off: nobody can log in
# as it. It keeps all permissions only because Redis replays MULTI/EXEC from
# the AOF as the default user and re-checks its ACL at EXEC; without them a
# restart silently drops every transaction (redis/redis#14541, fixed in #14545).
tmp="$acl.tmp.$$"
cat > "$tmp" <<ACL
user default reset off ~* &* +@all
user $master_user on >$master_pw ~* &* +@all
user $celery_user on >$celery_pw resetkeys ~celery* ~_kombu.* ~unacked* ~*.reply.celery.pidbox* resetchannels &* +@all -@dangerous
ACL
mv "$tmp" "$acl"

#!/bin/sh
# Imitates the official redis:8 image's entrypoint (its behaviour, not its code):
#  - a first argument that is a flag or a *.conf file means `redis-server ARGS...`;
#  - as root, with the capabilities to switch users: chown /data to redis and re-run
#    as redis with no capabilities left (SKIP_FIX_PERMS / SKIP_DROP_PRIVS as upstream);
#  - umask 0077 when the default 0022 is in force.
# Protected mode off by default is /usr/local/bin/redis-server's job.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
    if [ "$(id -u)" = 0 ] && [ -z "${SKIP_DROP_PRIVS:-}" ] &&
        setpriv -d | grep -q 'Capability bounding set:.*setuid' &&
        setpriv -d | grep -q 'Capability bounding set:.*setgid'; then
        [ -n "${SKIP_FIX_PERMS:-}" ] || find . \! -user redis -exec chown redis '{}' +
        exec setpriv --reuid redis --regid redis --clear-groups --nnp \
            --inh-caps=-all --ambient-caps=-all --bounding-set=-all "$0" "$@"
    fi
    echo "Starting Redis Server"
fi

if [ "$(umask)" = 0022 ]; then
    umask 0077
fi

exec "$@"

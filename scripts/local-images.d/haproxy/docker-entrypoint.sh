#!/bin/sh
# Imitates the official haproxy image's entrypoint (its behaviour, not its code): a
# first argument that is a flag means `haproxy ARGS...`, and haproxy runs in the
# foreground in master-worker mode (-W -db: SIGUSR2 reloads, SIGUSR1 stops gracefully).
# No user switching: it runs as whatever user the container has, root included.
set -e

if [ "${1#-}" != "$1" ]; then
    set -- haproxy "$@"
fi

if [ "$1" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi

exec "$@"

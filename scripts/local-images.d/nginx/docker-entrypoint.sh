#!/bin/sh
# Imitates the official nginx image's entrypoint: when the command is nginx, first
# source the executable *.envsh and run the executable *.sh files of
# /docker-entrypoint.d in version order (a failing script stops the start), then
# exec the command. NGINX_ENTRYPOINT_QUIET_LOGS=1 silences the messages.
set -e

log() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$@"; }

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
    if find /docker-entrypoint.d/ -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null | read -r _; then
        log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"
        log "$0: Looking for shell scripts in /docker-entrypoint.d/"
        find /docker-entrypoint.d/ -follow -type f -print | sort -V | while read -r f; do
            case "$f" in
                *.envsh | *.sh)
                    if [ ! -x "$f" ]; then
                        log "$0: Ignoring $f, not executable"
                    elif [ "${f%.envsh}" != "$f" ]; then
                        log "$0: Sourcing $f"
                        . "$f"
                    else
                        log "$0: Launching $f"
                        "$f"
                    fi
                    ;;
                *) log "$0: Ignoring $f" ;;
            esac
        done
        log "$0: Configuration complete; ready for start up"
    else
        log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi

exec "$@"

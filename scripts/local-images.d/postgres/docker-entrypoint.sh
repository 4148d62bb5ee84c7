#!/usr/bin/env bash
# Imitates the official postgres image's entrypoint (its behaviour, not its code):
#  - flags as first argument mean `postgres FLAGS...`;
#  - as root: fix ownership of $PGDATA and the socket dir, then re-run as postgres;
#  - on an empty $PGDATA: initdb with POSTGRES_USER/POSTGRES_PASSWORD, password auth
#    (scram-sha-256) for every TCP client, POSTGRES_DB created, then
#    /docker-entrypoint-initdb.d/* run against a temporary server that listens on
#    the unix socket only (so TCP health checks stay red until init is done);
#  - finally exec the command (postgres and its arguments).
set -Eeo pipefail

# VAR, or the content of the file named by VAR_FILE (Docker secrets), exported as VAR.
file_env() {
	local var=$1 file_var=${1}_FILE value=${2:-}
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo "error: both $var and $file_var are set (but are exclusive)" >&2
		exit 1
	fi
	if [ -n "${!var:-}" ]; then
		value=${!var}
	elif [ -n "${!file_var:-}" ]; then
		value=$(<"${!file_var}")
	fi
	export "$var=$value"
	unset "$file_var"
}

# psql against the temporary server, over the socket, as the superuser.
run_sql() {
	PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
		--no-password --no-psqlrc --dbname "${SQL_DB:-$POSTGRES_DB}" "$@"
}

# postgres options that print something and exit need no set-up.
wants_help() {
	local arg
	for arg; do
		case $arg in -'?' | --help | --describe-config | -V | --version) return 0 ;; esac
	done
	return 1
}

if [ "${1:0:1}" = - ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ] || wants_help "$@"; then
	exec "$@"
fi

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_HOST_AUTH_METHOD:=}"

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" || : # postgres insists; may fail on odd mounts, it will say so
mkdir -p /var/run/postgresql || :
chmod 3775 /var/run/postgresql || :
if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
	mkdir -p "$POSTGRES_INITDB_WALDIR"
	[ "$(id -u)" != 0 ] || find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
	chmod 700 "$POSTGRES_INITDB_WALDIR"
fi

if [ "$(id -u)" = 0 ]; then
	find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
	# setpriv (util-linux) instead of upstream's gosu; same effect.
	HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups \
		"${BASH_SOURCE[0]}" "$@"
fi

if [ -s "$PGDATA/PG_VERSION" ]; then
	printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
	exec "$@"
fi

# 18+ keeps data in /var/lib/postgresql/MAJOR/docker; data in the pre-18 place (or a
# volume still mounted there) means an un-upgraded database: refuse, as upstream does.
if [ "$PGDATA" = "/var/lib/postgresql/$PG_MAJOR/docker" ]; then
	old=()
	for d in /var/lib/postgresql /var/lib/postgresql/data /var/lib/postgresql/*/docker; do
		[ ! -s "$d/PG_VERSION" ] || old+=("$d")
	done
	if [ "${#old[@]}" = 0 ] && [ "$PG_MAJOR" -ge 18 ] && mountpoint -q /var/lib/postgresql/data; then
		old+=('/var/lib/postgresql/data (unused mount/volume)')
	fi
	if [ "${#old[@]}" != 0 ]; then
		cat >&2 <<-EOE
			Error: in 18+, the data lives in /var/lib/postgresql/$PG_MAJOR/docker (mount a volume
			       on /var/lib/postgresql), but there is PostgreSQL data in:
			         ${old[*]}
			       Probably the image was upgraded without upgrading the database (pg_upgrade).
		EOE
		exit 1
	fi
fi

if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
	cat >&2 <<-'EOE'
		Error: Database is uninitialized and superuser password is not specified.
		       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value,
		       e.g. "-e POSTGRES_PASSWORD=password" on "docker run".
		       POSTGRES_HOST_AUTH_METHOD=trust allows connections without a password
		       (not recommended).
	EOE
	exit 1
fi
[ "$POSTGRES_HOST_AUTH_METHOD" != trust ] ||
	echo 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust: anyone who reaches the port gets in without a password.' >&2

ls /docker-entrypoint-initdb.d/ >/dev/null # unreadable init scripts: fail before initdb

# initdb needs the current uid in /etc/passwd; fake it for arbitrary --user ids.
if ! getent passwd "$(id -u)" >/dev/null; then
	for wrapper in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
		[ -s "$wrapper" ] || continue
		NSS_WRAPPER_PASSWD=$(mktemp) NSS_WRAPPER_GROUP=$(mktemp)
		export LD_PRELOAD=$wrapper NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
		printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" >"$NSS_WRAPPER_PASSWD"
		printf 'postgres:x:%s:\n' "$(id -g)" >"$NSS_WRAPPER_GROUP"
		break
	done
fi
# shellcheck disable=SC2034 # waldir is used in the eval below
waldir=()
# shellcheck disable=SC2034
[ -z "${POSTGRES_INITDB_WALDIR:-}" ] || waldir=(--waldir "$POSTGRES_INITDB_WALDIR")
# POSTGRES_INITDB_ARGS is shell-split (quotes honoured), as upstream.
eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "${waldir[@]}"'
if [ -n "${NSS_WRAPPER_PASSWD:-}" ]; then
	rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
	unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
fi

# TCP clients authenticate with the method matching password_encryption
# (scram-sha-256 unless the server arguments say otherwise).
auth=${POSTGRES_HOST_AUTH_METHOD:-$(postgres -C password_encryption "${@:2}")}
printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

export PGPASSWORD=${PGPASSWORD:-$POSTGRES_PASSWORD}
NOTIFY_SOCKET='' PGUSER=${PGUSER:-$POSTGRES_USER} pg_ctl -D "$PGDATA" -w start \
	-o "$(printf '%q ' "${@:2}" -c listen_addresses= -p "${PGPORT:-5432}")"

exists=$(SQL_DB=postgres run_sql --set db="$POSTGRES_DB" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
if [ -z "$exists" ]; then
	SQL_DB=postgres run_sql --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
fi

echo
for f in /docker-entrypoint-initdb.d/*; do
	case $f in
		*.sh)
			if [ -x "$f" ]; then
				echo "$0: running $f"
				"$f"
			else
				echo "$0: sourcing $f"
				. "$f"
			fi
			;;
		*.sql) echo "$0: running $f" && run_sql -f "$f" ;;
		*.sql.gz) echo "$0: running $f" && gunzip -c "$f" | run_sql ;;
		*.sql.xz) echo "$0: running $f" && xzcat "$f" | run_sql ;;
		*.sql.zst) echo "$0: running $f" && zstd -dc "$f" | run_sql ;;
		*) echo "$0: ignoring $f" ;;
	esac
done

PGUSER=${PGUSER:-postgres} pg_ctl -D "$PGDATA" -m fast -w stop
unset PGPASSWORD
printf '\nPostgreSQL init process complete; ready for start up.\n\n'

exec "$@"

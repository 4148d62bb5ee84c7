#!/bin/sh
# One-shot initialisation for the local stack; every command is idempotent.
#   stack-init certs               local CA + server certificate into /certs (CA key in /ca)
#   stack-init print-ca            make them if missing, then print the CA certificate
#   stack-init secrets NAME:GID:DIR[,DIR…]…
#                                  random secrets into /secrets/DIR/NAME, only those missing
#   stack-init check FILE…         fail, naming each bad one, unless every FILE is non-empty and readable
set -eu

CERTS_DIR=${CERTS_DIR:-/certs}          # mounted read-only in nginx
CA_DIR=${CA_DIR:-/ca}                   # CA key: only this job ever mounts it
SECRETS_DIR=${SECRETS_DIR:-/secrets}    # one volume per consumer below it, read-only at /run/secrets there
NGINX_GID=${NGINX_GID:-101}
STACK_HOSTNAME=${STACK_HOSTNAME:-linkstack.localhost}
CERT_DAYS=${CERT_DAYS:-365}             # Mozilla's TLS guidelines: at most 366 days (re-issued below)

log() { echo "stack-init: $*" >&2; }

make_certs() {
    cert=$CERTS_DIR/fullchain.pem
    if [ -s "$cert" ] && [ -s "$CERTS_DIR/privkey.pem" ] && [ -s "$CERTS_DIR/ca.crt" ]; then
        # Kept while it covers STACK_HOSTNAME and has 30 days left; otherwise
        # re-issued from the same CA, so clients that trust the CA notice nothing.
        if openssl x509 -in "$cert" -noout -checkend 2592000 >/dev/null &&
           openssl x509 -in "$cert" -noout -checkhost "$STACK_HOSTNAME" | grep -q 'does match'; then
            log "certificate exists in $CERTS_DIR, kept ($(openssl x509 -in "$cert" -noout -enddate))"
            return 0
        fi
        log "certificate in $CERTS_DIR expires within 30 days or lacks $STACK_HOSTNAME: re-issuing"
    fi
    umask 077
    work=$(mktemp -d)
    if [ ! -s "$CA_DIR/ca.key" ] || [ ! -s "$CA_DIR/ca.crt" ]; then
        log "creating the local CA"
        openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.crt" -days 3650 \
            -subj "/O=linkstack local/CN=linkstack local CA" \
            -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    fi
    log "creating the server certificate for localhost, 127.0.0.1, ::1, $STACK_HOSTNAME"
    cat >"$work/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,DNS:$STACK_HOSTNAME
EXT
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$work/privkey.pem" -out "$work/server.csr" -subj "/CN=$STACK_HOSTNAME" 2>/dev/null
    openssl x509 -req -in "$work/server.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" \
        -CAcreateserial -days "$CERT_DAYS" -extfile "$work/ext.cnf" -out "$work/fullchain.pem" 2>/dev/null
    openssl verify -CAfile "$CA_DIR/ca.crt" "$work/fullchain.pem" >/dev/null
    # nginx (uid 101) reads the key through its group; certificates are public.
    # This job runs with nginx's group added (compose.yaml), so it may chgrp.
    chgrp "$NGINX_GID" "$work/privkey.pem" && chmod 0640 "$work/privkey.pem"
    chmod 0644 "$work/fullchain.pem"
    cp "$CA_DIR/ca.crt" "$work/ca.crt" && chmod 0644 "$work/ca.crt"
    # Key and certificate first, ca.crt last: its presence marks a complete set.
    mv "$work/privkey.pem" "$work/fullchain.pem" "$CERTS_DIR/"
    mv "$work/ca.crt" "$CERTS_DIR/"
    rm -rf "$work"
    log "done: $CERTS_DIR/{fullchain.pem,privkey.pem,ca.crt}"
}

# NAME:GID:DIR[,DIR…] -> SECRETS_DIR/DIR/NAME in each DIR (one volume per consumer),
# the same value in all, owned by this job's uid, group GID (the secret's own group,
# which only its consumers get through group_add), mode 0440. Owner and group are
# what keeps it private: even in a volume two services shared, only the members of
# GID could read it.
make_secrets() {
    umask 077
    for spec in "$@"; do
        name=${spec%%:*}
        rest=${spec#*:}
        group=${rest%%:*}
        dirs=$(printf '%s' "${rest#*:}" | tr ',' ' ')
        if [ -z "$name" ] || [ -z "$group" ] || [ -z "$dirs" ] || [ "$rest" = "$spec" ]; then
            log "bad secret spec '$spec': expected NAME:GID:DIR[,DIR...]"
            exit 2
        fi
        # An existing copy is the value (a volume deleted since gets it back).
        source=
        for dir in $dirs; do
            file=$SECRETS_DIR/$dir/$name
            [ -s "$file" ] || continue
            if [ -z "$source" ]; then
                source=$file
            elif [ "$(cat "$file")" != "$(cat "$source")" ]; then
                log "secret $name differs between $source and $file: remove the volumes (docker compose down -v)"
                exit 1
            fi
        done
        for dir in $dirs; do
            file=$SECRETS_DIR/$dir/$name
            if [ -s "$file" ]; then
                log "secret $name in $dir exists, kept"
                continue
            fi
            if [ -n "$source" ]; then
                cat "$source" >"$file.tmp"
            else
                # 32 random bytes as hex: no character needs quoting in a URL or a config file.
                openssl rand -hex 32 | tr -d "\n" >"$file.tmp"
            fi
            chgrp "$group" "$file.tmp"
            chmod 0440 "$file.tmp"
            mv "$file.tmp" "$file"
            source=${source:-$file}
            log "secret $name in $dir created (group $group, mode 0440)"
        done
    done
}

check_files() {
    missing=0
    for f in "$@"; do
        if [ ! -e "$f" ]; then
            log "MISSING (or a folder on its path is closed to uid $(id -u)): $f"
        elif [ ! -r "$f" ]; then
            log "NOT READABLE by uid $(id -u) (the service that reads it): $f"
        elif [ ! -s "$f" ]; then
            log "EMPTY: $f"
        else
            continue
        fi
        missing=1
    done
    if [ "$missing" -ne 0 ]; then
        log "refusing to start: fix the files above (see compose.prod.yaml's header)"
        exit 1
    fi
    log "all $# required files present and readable"
}

cmd=${1:-certs}
[ $# -gt 0 ] && shift
case $cmd in
    certs)    make_certs ;;
    print-ca) make_certs 2>/dev/null; cat "$CERTS_DIR/ca.crt" ;;
    secrets)  make_secrets "$@" ;;
    check)    check_files "$@" ;;
    *)        log "unknown command: $cmd"; exit 2 ;;
esac

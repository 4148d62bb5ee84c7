#!/bin/sh
# One-shot initialisation for the local stack; every command is idempotent.
#   stack-init certs               local CA + server certificate into /certs (CA key in /ca)
#   stack-init print-ca            make them if missing, then print the CA certificate
#   stack-init secrets NAME[:UID]… random secrets into /secrets, only those missing
#   stack-init check FILE…         fail, naming each bad one, unless every FILE is non-empty and readable
set -eu

CERTS_DIR=${CERTS_DIR:-/certs}          # mounted read-only in nginx
CA_DIR=${CA_DIR:-/ca}                   # CA key: only this job ever mounts it
SECRETS_DIR=${SECRETS_DIR:-/secrets}    # mounted read-only at /run/secrets in the consumers
NGINX_GID=${NGINX_GID:-101}
APP_GID=${APP_GID:-10001}
STACK_HOSTNAME=${STACK_HOSTNAME:-linkstack.localhost}
CERT_DAYS=${CERT_DAYS:-825}             # browsers reject leaf certificates valid for longer

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
    chmod 0640 "$work/privkey.pem" && chown "0:$NGINX_GID" "$work/privkey.pem"
    chmod 0644 "$work/fullchain.pem"
    cp "$CA_DIR/ca.crt" "$work/ca.crt" && chmod 0644 "$work/ca.crt"
    # Key and certificate first, ca.crt last: its presence marks a complete set.
    mv "$work/privkey.pem" "$work/fullchain.pem" "$CERTS_DIR/"
    mv "$work/ca.crt" "$CERTS_DIR/"
    rm -rf "$work"
    log "done: $CERTS_DIR/{fullchain.pem,privkey.pem,ca.crt}"
}

# NAME:UID -> file owned by UID, group APP_GID (the app reads every secret), mode 0440.
make_secrets() {
    umask 077
    for spec in "$@"; do
        name=${spec%%:*}
        owner=${spec#*:}
        [ "$owner" = "$spec" ] && owner=0
        file="$SECRETS_DIR/$name"
        if [ -s "$file" ]; then
            log "secret $name exists, kept"
            continue
        fi
        # 32 random bytes as hex: no character needs quoting in a URL or a config file.
        openssl rand -hex 32 | tr -d "\n" >"$file.tmp"
        # chmod before chown: root stops owning it (and has no CAP_FOWNER here).
        chmod 0440 "$file.tmp"
        chown "$owner:$APP_GID" "$file.tmp"
        mv "$file.tmp" "$file"
        log "secret $name created (owner $owner, group $APP_GID, mode 0440)"
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

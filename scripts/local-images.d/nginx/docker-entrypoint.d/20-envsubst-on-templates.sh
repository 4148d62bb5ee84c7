#!/bin/sh
# As in the official image: render each $NGINX_ENVSUBST_TEMPLATE_DIR/**/*.template
# into $NGINX_ENVSUBST_OUTPUT_DIR (suffix dropped, subfolders kept) with envsubst,
# replacing only variables that are defined in the environment (and match the
# NGINX_ENVSUBST_FILTER regex, if set), so nginx's own $host, $uri... survive.
set -e

ME=$(basename "$0")
log() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$@"; }

template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}

[ -d "$template_dir" ] || exit 0
if [ ! -w "$output_dir" ]; then
    # Upstream logs this and carries on (nginx then starts without the rendered files).
    log "$ME: ERROR: $template_dir exists, but $output_dir is not writable"
    exit 0
fi

# "${A} ${B} ..." for the defined variables: envsubst leaves every other $name alone.
defined_envs=$(printf '${%s} ' $(awk -v f="${NGINX_ENVSUBST_FILTER:-}" \
    'END { for (n in ENVIRON) if (n ~ f) print n }' </dev/null))

find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
    relative=${template#"$template_dir/"}
    output="$output_dir/${relative%"$suffix"}"
    mkdir -p "$(dirname "$output")"
    log "$ME: Running envsubst on $template to $output"
    envsubst "$defined_envs" <"$template" >"$output"
done

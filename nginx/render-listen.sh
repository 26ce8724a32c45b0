#!/bin/sh
# NGINX's listen directive for the ML Service's server block: plain HTTP, or
# HTTPS when a certificate and its key are given. Run before NGINX starts, by
# the nginx container's entrypoint and by `make run` (mlservice.stack).
#
#   render-listen.sh OUTPUT
#
# Environment: MLSERVICE_LISTEN (the address/port, e.g. 8080 or
# 127.0.0.1:8880), MLSERVICE_TLS_CERT and MLSERVICE_TLS_KEY (PEM files; both
# or neither). Says in one line on stderr which it is; stops on a certificate
# or key it cannot read.
#
# With TLS, the same port answers a plain HTTP request (NGINX's code 497)
# with 308 to the same URL over HTTPS: 308, not 301, so that a POST is sent
# again as a POST with its body. Only TLSv1.2 and TLSv1.3; the server block
# sends HSTS on HTTPS answers.
set -eu
out=$1
listen=${MLSERVICE_LISTEN:?MLSERVICE_LISTEN (the port NGINX listens on) is not set}
cert=${MLSERVICE_TLS_CERT:-}
key=${MLSERVICE_TLS_KEY:-}

if [ -z "$cert" ] && [ -z "$key" ]; then
  printf '# Written by render-listen.sh: plain HTTP (no MLSERVICE_TLS_CERT).\nlisten %s;\n' \
    "$listen" > "$out"
  echo "mlservice: NGINX serves plain HTTP on $listen, for local use only: no TLS certificate (set MLSERVICE_TLS_CERT and MLSERVICE_TLS_KEY to serve HTTPS)" >&2
  exit 0
fi
if [ -z "$cert" ] || [ -z "$key" ]; then
  echo "mlservice: set both MLSERVICE_TLS_CERT and MLSERVICE_TLS_KEY (the certificate and its private key, PEM), or neither for plain HTTP" >&2
  exit 1
fi
for file in "$cert" "$key"; do
  if [ ! -r "$file" ]; then
    echo "mlservice: TLS file $file cannot be read (MLSERVICE_TLS_CERT, MLSERVICE_TLS_KEY)" >&2
    exit 1
  fi
done
cat > "$out" <<EOF
# Written by render-listen.sh: HTTPS, with plain HTTP redirected.
listen $listen ssl;
ssl_certificate "$cert";
ssl_certificate_key "$key";
ssl_protocols TLSv1.2 TLSv1.3;
ssl_session_cache shared:mlservice_tls:10m;
ssl_session_timeout 1h;
error_page 497 =308 https://\$http_host\$request_uri;
EOF
echo "mlservice: NGINX serves HTTPS on $listen (certificate $cert); plain HTTP there is redirected to HTTPS (308)" >&2

#!/bin/bash
# TLS only (require_secure_transport, as the stack's Aurora parameter group), utf8mb4, and
# REDCap's max_allowed_packet. The OS user mysql is the socket-authenticated admin.
set -euo pipefail
port="${MARIADB_PORT:?}"
datadir=/tmp/mariadb-data
mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=socket \
  --auth-root-socket-user=mysql --skip-test-db >/dev/null
exec mariadbd --datadir="$datadir" --socket=/tmp/mariadb.sock --port="$port" --bind-address=127.0.0.1 \
  --skip-name-resolve --ssl-ca=/certs/ca.pem --ssl-cert=/certs/server.pem --ssl-key=/certs/server.key \
  --require-secure-transport=ON --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
  --max-allowed-packet=128M --innodb-file-per-table=ON --pid-file=/tmp/mariadb.pid

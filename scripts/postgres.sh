# Sourced by scripts/test: installs PostgreSQL from Debian's packages if it is missing, and
# starts a throw-away server on a free loopback port. Exports SLUICE_TEST_POSTGRES_URL and stops
# the server when the calling shell exits.

postgres_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# Installs a Debian package, saying so (what scripts/test needs from Debian goes through here).
apt_install() {
    echo "installing $2 (Debian package $1)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$1" >/dev/null
}

ensure_postgres() {
    if [[ -n "$(postgres_bin)" && -x "$(postgres_bin)/initdb" ]]; then
        return
    fi
    apt_install postgresql PostgreSQL
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_postgres() {
    local bin port run_as=()
    bin=$(postgres_bin)
    port=$(free_port)
    PG_DIR=$(mktemp -d /tmp/sluice-pg.XXXXXX)
    if [[ $(id -u) -eq 0 ]]; then
        # PostgreSQL refuses to run as root; the Debian package created the postgres user.
        chown postgres: "$PG_DIR"
        run_as=(runuser -u postgres --)
    fi
    "${run_as[@]}" "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    "${run_as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c max_connections=300" start >/dev/null \
        || { cat "$PG_DIR/server.log" >&2; return 1; }
    PG_STOP=("${run_as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate stop)
    export SLUICE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    # For tests that run a server of their own (to restart it under a consumer).
    export SLUICE_TEST_POSTGRES_BIN="$bin"
    echo "PostgreSQL listening on 127.0.0.1:$port" >&2
}

stop_postgres() {
    if [[ -n "${PG_DIR:-}" ]]; then
        "${PG_STOP[@]}" >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}

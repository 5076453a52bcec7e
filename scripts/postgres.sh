# Sourced by scripts/test: installs PostgreSQL from Debian's packages if it is missing, and
# starts a throw-away server on a free loopback port, serving TLS with a certificate signed by a
# throw-away certificate authority. Exports SLUICE_TEST_POSTGRES_URL and
# SLUICE_TEST_POSTGRES_CA (that authority's certificate, for sslmode=verify-full).

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

# What the build links and the tests use besides the servers: OpenSSL for librdkafka's TLS and
# SASL (SCRAM), pkg-config to find it, the openssl command (test certificates), socat (the TLS
# terminator a Kafka test puts in front of tansu, which speaks plaintext only), and Python.
ensure_build_packages() {
    local package
    for package in libssl-dev pkg-config openssl socat; do
        dpkg -s "$package" >/dev/null 2>&1 || apt_install "$package" "$package"
    done
    # The test scripts' glue (free ports, the API reference, the live Prometheus test, the
    # validators' virtualenvs) is Python.
    command -v python3 >/dev/null || apt_install python3 Python
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv "Python's venv"
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
    postgres_certificates "$PG_DIR/tls" || return 1
    [[ ${#run_as[@]} -eq 0 ]] || chown -R postgres: "$PG_DIR/tls"
    "${run_as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c max_connections=300 \
            -c ssl=on -c ssl_cert_file=$PG_DIR/tls/server.pem -c ssl_key_file=$PG_DIR/tls/server.key" start >/dev/null \
        || { cat "$PG_DIR/server.log" >&2; return 1; }
    PG_STOP=("${run_as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate stop)
    export SLUICE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    # For tests that run a server of their own (to restart it under a consumer).
    export SLUICE_TEST_POSTGRES_BIN="$bin"
    export SLUICE_TEST_POSTGRES_CA="$PG_DIR/tls/ca.pem"
    echo "PostgreSQL listening on 127.0.0.1:$port (TLS offered)" >&2
}

# A certificate authority and a server certificate it signs for 127.0.0.1, made afresh per run:
# tests connect with sslmode=require and with verify-full against this authority.
postgres_certificates() {
    local dir=$1
    mkdir -p "$dir"
    (
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sluice-test-ca \
            -keyout ca.key -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.pem
        chmod 600 server.key
    ) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; return 1; }
}

stop_postgres() {
    if [[ -n "${PG_DIR:-}" ]]; then
        "${PG_STOP[@]}" >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}

# Sourced by scripts/test: installs the tansu Kafka-protocol broker from crates.io if it is
# missing, and starts one on a free loopback port with in-memory storage. Exports
# SLUICE_TEST_KAFKA_BROKERS (and SLUICE_TEST_TANSU for tests that run brokers of their own) and
# stops it when the calling shell exits.

TANSU_VERSION=0.6.0

ensure_tansu() {
    if command -v tansu >/dev/null 2>&1 || [[ -x "$HOME/.cargo/bin/tansu" ]]; then
        return
    fi
    echo "installing tansu $TANSU_VERSION from crates.io (about 10 minutes, once)" >&2
    cargo install tansu --version "$TANSU_VERSION" --features dynostore --locked --quiet
}

tansu_bin() {
    command -v tansu 2>/dev/null || echo "$HOME/.cargo/bin/tansu"
}

start_tansu() {
    local port bin
    bin=$(tansu_bin)
    port=$(free_port)
    TANSU_LOG=$(mktemp /tmp/sluice-tansu.XXXXXX.log)
    "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$TANSU_LOG" 2>&1 &
    TANSU_PID=$!
    local deadline=$((SECONDS + 30))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$TANSU_PID" 2>/dev/null || ((SECONDS > deadline)); then
            cat "$TANSU_LOG" >&2
            return 1
        fi
        sleep 0.2
    done
    export SLUICE_TEST_KAFKA_BROKERS="127.0.0.1:$port"
    export SLUICE_TEST_TANSU="$bin"
    echo "tansu listening on 127.0.0.1:$port" >&2
}

stop_tansu() {
    if [[ -n "${TANSU_PID:-}" ]]; then
        kill "$TANSU_PID" 2>/dev/null || true
        wait "$TANSU_PID" 2>/dev/null || true
    fi
}

# Sourced by scripts/test: installs Prometheus's `promtool` from Debian's packages if it is
# missing, and checks deploy/prometheus: the scrape config and its rule files load, and every
# alert fires in its unit tests (deploy/prometheus/alerts_test.yml).

# apt_install comes from scripts/postgres.sh, sourced first.
ensure_promtool() {
    if command -v promtool >/dev/null; then
        return
    fi
    apt_install prometheus promtool
}

check_prometheus_config() {
    (
        cd deploy/prometheus
        promtool check config prometheus.yml
        promtool test rules alerts_test.yml
    )
}

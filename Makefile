# Baton — build, test and demo. Every target builds what it needs.
#
# The control plane (etcd + kube-apiserver) is built from Go modules once and cached
# in $(BATON_CACHE); delete that folder to force a rebuild.

K8S_VERSION      := v1.34.4
BATON_CACHE      ?= $(HOME)/.cache/baton
CONTROLPLANE_BIN ?= $(BATON_CACHE)/controlplane-$(K8S_VERSION)/bin
CARGO            ?= cargo
GO               ?= go

CONTRACT_TOOLS   ?= $(BATON_CACHE)/contract
PRISM_VERSION    := 5.14.2
OCTOKIT_OPENAPI  := 23.0.2
NPM              ?= npm

export BATON_CONTROLPLANE_BIN := $(CONTROLPLANE_BIN)
export BATON_CONTRACT_TOOLS := $(CONTRACT_TOOLS)

GO_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=34 \
	-X k8s.io/component-base/version.gitTreeState=clean

STATIC_TARGET    := x86_64-unknown-linux-gnu
STATIC_BIN       := target/$(STATIC_TARGET)/release/baton

.PHONY: static
.PHONY: all build test unit-test crds crds-check fmt fmt-check lint controlplane contract-tools demo bench bench-edit bench-operator clean

all: build

build:
	$(CARGO) build --workspace --locked

controlplane: $(CONTROLPLANE_BIN)/kube-apiserver $(CONTROLPLANE_BIN)/etcd

$(CONTROLPLANE_BIN)/kube-apiserver $(CONTROLPLANE_BIN)/etcd: tools/controlplane/go.mod tools/controlplane/go.sum
	@mkdir -p $(CONTROLPLANE_BIN)
	@echo "building etcd and kube-apiserver $(K8S_VERSION) from Go modules into $(CONTROLPLANE_BIN)"
	cd tools/controlplane && $(GO) build -trimpath -ldflags '$(GO_LDFLAGS)' -o $(CONTROLPLANE_BIN)/ ./cmd/...
	@touch $(CONTROLPLANE_BIN)/kube-apiserver $(CONTROLPLANE_BIN)/etcd

# GitHub's OpenAPI description and Prism, which checks every request the tests send.
contract-tools: $(CONTRACT_TOOLS)/node_modules/.bin/prism

$(CONTRACT_TOOLS)/node_modules/.bin/prism:
	@mkdir -p $(CONTRACT_TOOLS)
	cd $(CONTRACT_TOOLS) && $(NPM) install --no-audit --no-fund --loglevel=error @stoplight/prism-cli@$(PRISM_VERSION) @octokit/openapi@$(OCTOKIT_OPENAPI)

# Every test: pure, fake-backed, and against the real control plane.
test: controlplane contract-tools
	$(CARGO) test --workspace --locked

unit-test:
	$(CARGO) test --workspace --locked --lib --bins

crds:
	$(CARGO) run --locked -q -p baton-api --bin crdgen -- crds

crds-check: crds
	git diff --exit-code -- crds/

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

demo: controlplane
	$(CARGO) build --locked -q -p baton-controller -p baton-devtools
	BATON_BIN=$(CURDIR)/target/debug/baton $(CARGO) run --locked -q -p baton-devtools --bin baton-demo

# The binary the Dockerfile ships: statically linked, checked to run.
static:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --locked --target $(STATIC_TARGET) -p baton-controller --bin baton
	@ldd $(STATIC_BIN) 2>&1 | grep -qE "not a dynamic executable|statically linked" || { echo "$(STATIC_BIN) is not static"; exit 1; }
	$(STATIC_BIN) --version

bench: bench-edit bench-operator

bench-edit:
	$(CARGO) bench --locked -p baton-manifest

# The operator under load: N promotions (BATON_BENCH_N, default 50) on the real control plane.
bench-operator: controlplane
	$(CARGO) build --release --locked -q -p baton-controller -p baton-devtools
	BATON_BIN=$(CURDIR)/target/release/baton $(CURDIR)/target/release/baton-bench

clean:
	$(CARGO) clean

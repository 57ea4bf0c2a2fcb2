# Baton — build, test and demo. Every target builds what it needs.
#
# The control plane (etcd + kube-apiserver + kube-controller-manager) and Argo CD
# (application-controller + repo-server, one multi-call binary, and miniredis) are
# built from Go modules once and cached in $(BATON_CACHE); delete that folder to
# force a rebuild.

K8S_VERSION      := v1.34.4
BATON_CACHE      ?= $(HOME)/.cache/baton
CONTROLPLANE_BIN ?= $(BATON_CACHE)/controlplane-$(K8S_VERSION)/bin
CARGO            ?= cargo
GO               ?= go

ARGOCD_VERSION   := v3.2.11
ARGOCD_DIR       ?= $(BATON_CACHE)/argocd-$(ARGOCD_VERSION)
ARGOCD_BIN       ?= $(ARGOCD_DIR)/bin

CONTRACT_TOOLS   ?= $(BATON_CACHE)/contract
PRISM_VERSION    := 5.14.2
OCTOKIT_OPENAPI  := 23.0.2
GRAPHQL_JS       := 16.11.0
OCTOKIT_GRAPHQL  := 15.26.1
CONTRACT_STAMP   := $(CONTRACT_TOOLS)/.installed-$(PRISM_VERSION)-$(OCTOKIT_OPENAPI)-$(GRAPHQL_JS)-$(OCTOKIT_GRAPHQL)
NPM              ?= npm

export BATON_CONTROLPLANE_BIN := $(CONTROLPLANE_BIN)
export BATON_CONTRACT_TOOLS := $(CONTRACT_TOOLS)
export BATON_ARGOCD_BIN := $(ARGOCD_BIN)
export BATON_ARGOCD_CRDS := $(ARGOCD_DIR)/crds

GO_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=34 \
	-X k8s.io/component-base/version.gitTreeState=clean

STATIC_TARGET    := x86_64-unknown-linux-gnu
STATIC_BIN       := target/$(STATIC_TARGET)/release/baton

.PHONY: static
.PHONY: all build test unit-test crds crds-check fmt fmt-check lint controlplane argocd contract-tools demo bench bench-edit bench-operator clean install-kubectl-plugin

all: build

build:
	$(CARGO) build --workspace --locked

CONTROLPLANE_BINS := $(CONTROLPLANE_BIN)/kube-apiserver $(CONTROLPLANE_BIN)/etcd $(CONTROLPLANE_BIN)/kube-controller-manager

controlplane: $(CONTROLPLANE_BINS)

$(CONTROLPLANE_BINS) &: tools/controlplane/go.mod tools/controlplane/go.sum $(wildcard tools/controlplane/cmd/*/main.go)
	@mkdir -p $(CONTROLPLANE_BIN)
	@echo "building etcd, kube-apiserver and kube-controller-manager $(K8S_VERSION) from Go modules into $(CONTROLPLANE_BIN)"
	cd tools/controlplane && $(GO) build -trimpath -ldflags '$(GO_LDFLAGS)' -o $(CONTROLPLANE_BIN)/ ./cmd/...
	@touch $(CONTROLPLANE_BINS)

# Argo CD from Go modules (tools/argocd): `argocd` is the multi-call binary
# (ARGOCD_BINARY_NAME=argocd-application-controller | argocd-repo-server), `miniredis`
# its Redis. The Application and AppProject CRDs are copied from the same module
# download, so the tests install exactly the CRDs of the Argo CD they run.
ARGOCD_BINS := $(ARGOCD_BIN)/argocd $(ARGOCD_BIN)/miniredis

argocd: $(ARGOCD_BINS) $(ARGOCD_DIR)/crds/application-crd.yaml

$(ARGOCD_BINS) &: tools/argocd/go.mod tools/argocd/go.sum $(wildcard tools/argocd/cmd/*/main.go)
	@mkdir -p $(ARGOCD_BIN)
	@echo "building Argo CD $(ARGOCD_VERSION) and miniredis from Go modules into $(ARGOCD_BIN)"
	cd tools/argocd && $(GO) build -trimpath -ldflags '-s -w' -o $(ARGOCD_BIN)/ ./cmd/...
	@touch $(ARGOCD_BINS)

$(ARGOCD_DIR)/crds/application-crd.yaml: tools/argocd/go.mod
	@mkdir -p $(ARGOCD_DIR)/crds
	cd tools/argocd && src=$$($(GO) list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3) && \
		test -n "$$src" && cp $$src/manifests/crds/application-crd.yaml $$src/manifests/crds/appproject-crd.yaml $(ARGOCD_DIR)/crds/ && \
		chmod u+w $(ARGOCD_DIR)/crds/*.yaml

# GitHub's OpenAPI description and Prism, which checks every request the tests send.
# GraphQL documents are checked with graphql-js against GitHub's published schema.
contract-tools: $(CONTRACT_STAMP)

$(CONTRACT_STAMP):
	@mkdir -p $(CONTRACT_TOOLS)
	cd $(CONTRACT_TOOLS) && $(NPM) install --no-audit --no-fund --loglevel=error @stoplight/prism-cli@$(PRISM_VERSION) @octokit/openapi@$(OCTOKIT_OPENAPI) graphql@$(GRAPHQL_JS) @octokit/graphql-schema@$(OCTOKIT_GRAPHQL)
	@touch $@

# Every test: pure, fake-backed, and against the real control plane.
test: controlplane argocd contract-tools
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

demo: controlplane argocd
	$(CARGO) build --locked -q -p baton-controller -p baton-devtools
	BATON_BIN=$(CURDIR)/target/debug/baton $(CARGO) run --locked -q -p baton-devtools --bin baton-demo

# The binary the Dockerfile ships: statically linked, checked to run.
static:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --locked --target $(STATIC_TARGET) -p baton-controller --bin baton
	@ldd $(STATIC_BIN) 2>&1 | grep -qE "not a dynamic executable|statically linked" || { echo "$(STATIC_BIN) is not static"; exit 1; }
	$(STATIC_BIN) --version

# `kubectl baton promote ...`: kubectl runs any `kubectl-<name>` on the PATH as a plugin.
# A copy, not a symlink, so `cargo clean` does not break it. PREFIX=/usr/local for all users.
PREFIX ?= $(HOME)/.local

install-kubectl-plugin:
	$(CARGO) build --release --locked -p baton-controller --bin baton
	install -d $(PREFIX)/bin
	install -m 0755 target/release/baton $(PREFIX)/bin/kubectl-baton
	@echo "installed $(PREFIX)/bin/kubectl-baton; with $(PREFIX)/bin on PATH: kubectl baton promote --help"

bench: bench-edit bench-operator

bench-edit:
	$(CARGO) bench --locked -p baton-manifest

# The operator under load: N promotions (BATON_BENCH_N, default 50) on the real control plane.
bench-operator: controlplane
	$(CARGO) build --release --locked -q -p baton-controller -p baton-devtools
	BATON_BIN=$(CURDIR)/target/release/baton $(CURDIR)/target/release/baton-bench

clean:
	$(CARGO) clean

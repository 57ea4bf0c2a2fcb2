# Baton — build, test and demo. Every target builds what it needs.
#
# The control plane (etcd + kube-apiserver) is built from Go modules once and cached
# in $(BATON_CACHE); delete that folder to force a rebuild.

K8S_VERSION      := v1.34.4
BATON_CACHE      ?= $(HOME)/.cache/baton
CONTROLPLANE_BIN ?= $(BATON_CACHE)/controlplane-$(K8S_VERSION)/bin
CARGO            ?= cargo
GO               ?= go

export BATON_CONTROLPLANE_BIN := $(CONTROLPLANE_BIN)

GO_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=34 \
	-X k8s.io/component-base/version.gitTreeState=clean

.PHONY: all build test unit-test crds crds-check fmt fmt-check lint controlplane demo bench clean

all: build

build:
	$(CARGO) build --workspace --locked

controlplane: $(CONTROLPLANE_BIN)/kube-apiserver $(CONTROLPLANE_BIN)/etcd

$(CONTROLPLANE_BIN)/kube-apiserver $(CONTROLPLANE_BIN)/etcd: tools/controlplane/go.mod tools/controlplane/go.sum
	@mkdir -p $(CONTROLPLANE_BIN)
	@echo "building etcd and kube-apiserver $(K8S_VERSION) from Go modules into $(CONTROLPLANE_BIN)"
	cd tools/controlplane && $(GO) build -trimpath -ldflags '$(GO_LDFLAGS)' -o $(CONTROLPLANE_BIN)/ ./cmd/...
	@touch $(CONTROLPLANE_BIN)/kube-apiserver $(CONTROLPLANE_BIN)/etcd

# Every test: pure, fake-backed, and against the real control plane.
test: controlplane
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
	$(CARGO) run --locked -q -p baton-testkit --bin baton-demo

bench:
	$(CARGO) bench --workspace --locked

clean:
	$(CARGO) clean

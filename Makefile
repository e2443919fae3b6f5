# The two set-up commands (see README): `make up` runs modelgate locally on a real control plane,
# `make test` runs every check and test. Both install what they need on first use.
.PHONY: up down test crd tools venv install-manifest chart-lint
up:
	bash hack/up.sh
down:
	bash hack/down.sh $(ARGS)
test:
	bash hack/test.sh
crd: venv
	.venv/bin/python -m modelgate_dev.crdgen
# deploy/install.yaml, the single-file `kubectl apply` install, rendered from the chart (after `make crd`).
install-manifest:
	bash hack/install-manifest.sh
chart-lint:
	"$$(bash hack/k8s-tools.sh helm)/helm" lint --strict charts/modelgate
tools:
	bash hack/k8s-tools.sh
venv:
	bash hack/venv.sh

# Shortcuts; each target is one command you can also run by hand.
.PHONY: run test lambdas lambdas-arm64 validate bench sam-build sam-build-x86 local-api test-sam-local

run:            ## ticketd on the embedded default (127.0.0.1:8080, ./data)
	cargo run -p ticketd

test:           ## every test, as CI runs it
	./scripts/test

lambdas:        ## release bootstraps for x86-64 (offline), checked: no SQLite
	./scripts/build-lambdas

lambdas-arm64:  ## release bootstraps for arm64 (needs the aarch64 std)
	./scripts/build-lambdas --arm64

validate:       ## sam validate --lint
	SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint

bench:          ## side-by-side benchmark (release builds); writes bench/RESULTS.md
	./scripts/bench

sam-build:      ## sam build for samconfig's Architecture (arm64), then the bootstrap check
	./scripts/sam-build

sam-build-x86:  ## sam build for x86_64 (offline; what sam local runs), then the bootstrap check
	./scripts/sam-build x86_64

MOTO_PORT ?= 5000
PORT ?= 3000
local-api:      ## the API through sam local start-api on 127.0.0.1:$(PORT), moto on $(MOTO_PORT) (needs Docker)
	MOTO_PORT=$(MOTO_PORT) ./scripts/local-api $(PORT)

test-sam-local: ## sam build + sam local for real: Docker set up if needed, README walkthrough, close events
	./scripts/test-sam-local

# Shortcuts; each target is one command you can also run by hand.
.PHONY: run test lambdas lambdas-arm64 validate bench

run:            ## ticketd on the embedded default (127.0.0.1:8080, ./data)
	cargo run -p ticketd

test:           ## every test, as CI runs it
	./scripts/test

lambdas:        ## release bootstraps for x86-64 (offline)
	./scripts/build-lambdas

lambdas-arm64:  ## release bootstraps for arm64 (needs the aarch64 std)
	./scripts/build-lambdas --arm64

validate:       ## sam validate --lint
	SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint

bench:          ## side-by-side benchmark (release builds); writes bench/RESULTS.md
	./scripts/bench

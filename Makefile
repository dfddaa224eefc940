.PHONY: install start generate typecheck test migrate
install:
	npm ci
start:
	npm start
generate:
	npm run generate
typecheck:
	npm run typecheck
test:
	npm test
migrate:
	npm run migrate
.PHONY: lint-openapi test-contract example sdk-pack
lint-openapi:
	npm run lint:openapi
test-contract:
	npm run test:contract
example:
	npm run example
sdk-pack:
	npm run sdk:pack
.PHONY: bench
bench:
	npm run bench
.PHONY: lint format docs-config
lint:
	npm run lint
format:
	npm run format
docs-config:
	npm run docs:config
.PHONY: build start-prod
build:
	npm run build
start-prod:
	npm run start:prod
.PHONY: image test-node24
image:
	bash scripts/image.sh
# the pinned Node, first on the PATH (checked: no silent fallback to the machine's own)
test-node24:
	bin=$$(bash scripts/node-binary.sh) && PATH="$$bin:$$PATH" && export PATH \
	  && test "$$(node --version)" = "v$$(cat .node-version)" && node --version && npm test
.PHONY: chaos
chaos:
	bash scripts/chaos.sh

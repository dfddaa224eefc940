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

// `make generate` / `npm run generate`: everything in generated/ from openapi/openapi.yaml. Never edit generated/ by hand.
//   generated/api-types.ts  server-side types (openapi-typescript)
//   generated/sdk/          the partner SDK, a package of its own (@hey-api/openapi-ts, fetch client, no runtime deps)
//   generated/reference.html the API reference page served at /docs (Redocly build-docs, everything inlined: no CDN)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createClient } from '@hey-api/openapi-ts';
import yaml from 'js-yaml';

const DOC = 'openapi/openapi.yaml';
const doc = yaml.load(readFileSync(DOC, 'utf8'));
const note = `Generated from ${DOC} by \`make generate\`; do not edit.`;

execFileSync('npx', ['openapi-typescript', DOC, '-o', 'generated/api-types.ts', '--silent'], { stdio: 'inherit' });
execFileSync('npx', ['redocly', 'build-docs', DOC, '--inlineBundle', '-o', 'generated/reference.html'], {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, REDOCLY_TELEMETRY: 'off' },
});

rmSync('generated/sdk/src', { recursive: true, force: true });
await createClient({
  input: `./${DOC}`,
  output: { path: 'generated/sdk/src' },
  plugins: [{ name: '@hey-api/client-fetch', includeInEntry: true }, '@hey-api/typescript', '@hey-api/sdk'],
  logs: { level: 'silent', file: false },
});

mkdirSync('generated/sdk', { recursive: true });
// The one hand-written piece of the SDK: request signing, shared with the server (src/sdk/sign.ts), plugged into the
// generated client's request interceptor. Copied, not edited, so generated/ stays a pure output.
writeFileSync(
  'generated/sdk/src/sign.ts',
  `// Copied from src/sdk/sign.ts by \`make generate\`; do not edit.\n` + readFileSync('src/sdk/sign.ts', 'utf8'),
);
const json = (file, value) => writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
json('generated/sdk/package.json', {
  name: '@bindcard/sdk',
  version: doc.info.version,
  description: `TypeScript client of the bindcard partner API (${doc.info.title}). ${note}`,
  type: 'module',
  main: 'dist/index.js',
  types: 'dist/index.d.ts',
  exports: {
    '.': { types: './dist/index.d.ts', import: './dist/index.js' },
    './sign': { types: './dist/sign.d.ts', import: './dist/sign.js' },
  },
  files: ['dist', 'openapi.yaml'],
  scripts: { build: 'tsc -p .', prepack: 'tsc -p .' },
  license: 'UNLICENSED',
});
json('generated/sdk/tsconfig.json', {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    declaration: true,
    outDir: 'dist',
    rootDir: 'src',
    lib: ['ES2022', 'DOM'],
    types: ['node'],
    skipLibCheck: true,
  },
  include: ['src'],
});
writeFileSync('generated/sdk/openapi.yaml', readFileSync(DOC));
writeFileSync('generated/README.md', `# generated/\n\n${note}\nCI regenerates it and fails on any difference.\n`);
console.log(`generated/ written from ${DOC} (version ${doc.info.version})`);

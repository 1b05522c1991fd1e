// `npm run build`: the plugin's application as a few files in dist/, with esbuild.
//
//   dist/package.json     {"type": "module"}, the name and version
//   dist/main.js          the core: protocol, FIFO, shaping, store, delivery and the light backends
//   dist/*-HASH.js        chunks: each cloud SDK (awslogs, gcplogs, elasticsearch/opensearch), loaded
//                         at a container's first send through the import() the backend already does,
//                         with the same named exports as Node's import() of the package
//   dist/assets/*         files our own code reads at run time (`new URL('x', import.meta.url)`)
//   dist/node_modules/    the native addons, kept out of the bundle, as packages with what they
//                         load at run time (their JavaScript, package.json and compiled .node,
//                         built for this machine's Node 24 by `make deps`); node resolves them
//                         from dist/ as from anywhere
//
// Every output file is at the top of dist/, so a path relative to import.meta.url means the same
// from any chunk. Minified, functions and classes keeping their names (`err.name`, stack traces):
// the plugin is what every `docker plugin install` downloads.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'dist');

/**
 * Modules a dependency requires that never run in logship, replaced by one that says so if they
 * ever do (keyed by the package and the file, as a dependency names it):
 * - iconv-lite (a third of the core: its charset tables) decodes request bodies for body-parser,
 *   and express.raw() without a charset, all the LogDriver API needs, never asks;
 * - google-gax's IAM, Locations and long-running Operations protos are for the clients of those
 *   mixins and for long-running calls, which generated clients of other APIs make;
 *   gcplogs' LoggingServiceV2Client has none of them;
 * - undici's llhttp without wasm SIMD is the fallback for a CPU without it (ppc64 before Node
 *   24.12, x86-64 without SSE4.1): every host logship's x64 and arm64 builds run on has SIMD.
 */
const NEVER_RUN: { pkg: string; file: RegExp; why: string }[] = [
  { pkg: 'iconv-lite', file: /^iconv-lite$/, why: "express.raw() keeps the LogDriver API's bodies as bytes" },
  { pkg: 'google-gax', file: /^(\.\.\/)+protos\/(iam_service|locations|operations)$/, why: 'logship makes no IAM, Locations or long-running call' },
  { pkg: 'undici', file: /^\.\.\/llhttp\/llhttp-wasm\.js$/, why: "this CPU has no wasm SIMD, which llhttp's build logship keeps needs" },
];

const neverRun: esbuild.Plugin = {
  name: 'logship-never-run',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      const left = NEVER_RUN.find((n) => n.file.test(args.path) && (args.path === n.pkg || args.resolveDir.includes(`/node_modules/${n.pkg}/`)));
      return left ? { path: `${left.pkg}:${args.path}`, namespace: 'never-run', pluginData: left.why } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'never-run' }, (args) => ({
      contents: `const why = ${JSON.stringify(`${args.path} is left out of logship's bundle: ${String(args.pluginData)}`)};
module.exports = new Proxy({}, { get(_, key) { if (key === '__esModule' || typeof key === 'symbol') return undefined; throw new Error(why + ' (asked for ' + String(key) + ')'); } });`,
      loader: 'js',
    }));
  },
};

/** Packages with a compiled addon: loaded from node_modules at run time, never bundled. */
const NATIVE = ['unix-dgram'];
/** Dependencies of those used only to compile them (C++ headers). */
const BUILD_ONLY = new Set(['nan', 'node-addon-api', 'node-gyp']);

// The CommonJS dependencies ask for `require`, `__filename` and `__dirname`, which an ES module
// does not have: each output file defines them for itself.
const banner = [
  "import { createRequire as __logshipCreateRequire } from 'node:module';",
  "import { fileURLToPath as __logshipFileURLToPath } from 'node:url';",
  'const require = __logshipCreateRequire(import.meta.url);',
  'const __filename = __logshipFileURLToPath(import.meta.url);',
  "const __dirname = __logshipFileURLToPath(new URL('.', import.meta.url));",
].join(' ');

/**
 * `new URL('../../proto/entry.proto', import.meta.url)` in our sources names a file read at run
 * time: it is copied to dist/assets/ and the reference rewritten to it.
 */
const assets: esbuild.Plugin = {
  name: 'logship-assets',
  setup(build) {
    build.onLoad({ filter: /\/src\/.*\.ts$/ }, async (args) => {
      const source = await fs.promises.readFile(args.path, 'utf8');
      const contents = source.replace(/new URL\('(\.\.?\/[^']+)', import\.meta\.url\)/g, (_, relative: string) => {
        const file = path.resolve(path.dirname(args.path), relative);
        if (!fs.existsSync(file)) throw new Error(`${path.relative(ROOT, args.path)}: ${relative} does not exist`);
        fs.mkdirSync(path.join(OUT, 'assets'), { recursive: true });
        fs.copyFileSync(file, path.join(OUT, 'assets', path.basename(file)));
        return `new URL('./assets/${path.basename(file)}', import.meta.url)`;
      });
      return { contents, loader: 'ts' };
    });
  },
};

/**
 * `await import('pkg')` of a CommonJS package: in a chunk esbuild gives only `default` (the
 * module.exports), where Node gives each export by name too, which is what the backends use.
 * So each package imported so is reached through a small module that exports, by name (default
 * too where there is one), what the file esbuild bundles for it exports, read here with Node's
 * require(). A package esbuild takes as an ES module keeps its own exports.
 */
const dynamicImports: esbuild.Plugin = {
  name: 'logship-dynamic-imports',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind !== 'dynamic-import' || args.path.startsWith('node:') || builtinModules.includes(args.path)) return undefined;
      return { path: args.path, namespace: 'named-exports', pluginData: { resolveDir: args.resolveDir } };
    });
    build.onLoad({ filter: /.*/, namespace: 'named-exports' }, async (args) => {
      const { resolveDir } = args.pluginData as { resolveDir: string };
      const specifier = JSON.stringify(args.path);
      const file = (await build.resolve(args.path, { kind: 'import-statement', resolveDir })).path;
      let names: string[];
      try {
        names = Object.keys(createRequire(file)(file) as object).filter((n) => n !== 'module.exports');
      } catch (err) {
        // An ES module (Node 24 loads one that has no "type": "module" as such, and fails on
        // its extensionless imports, which esbuild resolves): it keeps its own exports.
        const code = (err as { code?: string }).code ?? '';
        if (!(err instanceof SyntaxError) && code !== 'ERR_MODULE_NOT_FOUND' && !code.startsWith('ERR_REQUIRE_')) throw err;
        // `export *` leaves out a default export (node-fetch's fetch is one): said apart.
        const { metafile } = await esbuild.build({ entryPoints: [file], format: 'esm', write: false, metafile: true, logLevel: 'silent' });
        const hasDefault = Object.values(metafile.outputs).some((o) => o.exports.includes('default'));
        const contents = `export * from ${specifier};${hasDefault ? ` export { default } from ${specifier};` : ''}`;
        return { contents, resolveDir, loader: 'js' };
      }
      const contents = [
        `import * as ns from ${specifier};`,
        `const { ${names.map((n, i) => `${JSON.stringify(n)}: e${i}`).join(', ')} } = ns;`,
        `export { ${names.map((n, i) => `e${i} as ${JSON.stringify(n)}`).join(', ')} };`,
      ].join('\n');
      return { contents, resolveDir, loader: 'js' };
    });
  },
};

fs.rmSync(OUT, { recursive: true, force: true });
fs.mkdirSync(OUT, { recursive: true });
// The output is ES modules; the folder says so for itself, so dist/ runs anywhere.
const { name, version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
fs.writeFileSync(path.join(OUT, 'package.json'), `${JSON.stringify({ name, version, private: true, type: 'module' }, null, 2)}\n`);
const result = await esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: ['src/main.ts'],
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  external: NATIVE,
  banner: { js: banner },
  minify: true,
  charset: 'utf8',
  legalComments: 'none',
  chunkNames: '[name]-[hash]',
  metafile: true,
  // @platformatic/kafka's compression (lz4, snappy) and crc32c are WebAssembly that its
  // wasm-utils reads from a file beside its own module, which a bundle does not have: the
  // package's `bundled` entry carries the same module inline.
  alias: { '@platformatic/wasm-utils': '@platformatic/wasm-utils/bundled' },
  plugins: [assets, dynamicImports, neverRun],
  logLevel: 'warning',
});

/** The packages NATIVE loads at run time: themselves and their dependencies, transitively. */
function runtimeClosure(names: string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || BUILD_ONLY.has(name)) return;
    seen.add(name);
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dep);
  };
  names.forEach(visit);
  return [...seen].sort();
}

/** What a package needs at run time: its manifest, its JavaScript and JSON, and its compiled addons. */
function runtimeFile(relative: string, isDirectory: boolean): boolean {
  if (/(^|\/)(test|tests|example|examples|src|deps|obj\.target|\.deps)$/.test(relative)) return false;
  return isDirectory || /\.(js|cjs|mjs|json)$/.test(relative) || /^build\/Release\/[^/]+\.node$/.test(relative);
}

const packages = runtimeClosure(NATIVE);
for (const name of packages) {
  const from = path.join(ROOT, 'node_modules', name);
  fs.cpSync(from, path.join(OUT, 'node_modules', name), {
    recursive: true,
    filter: (src) => runtimeFile(path.relative(from, src), fs.statSync(src).isDirectory()),
  });
}
const outputs = Object.entries(result.metafile.outputs);
const total = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
const main = result.metafile.outputs['dist/main.js'];
console.log(
  `bundle: dist/main.js ${(main!.bytes / 1e6).toFixed(2)} MB, ${outputs.length - 1} chunks, ${(total / 1e6).toFixed(2)} MB in all; ` +
    `in dist/node_modules: ${packages.join(', ')}`,
);

// The README's option tables are the schemas' (npm run docs:options writes them), and no two
// backends, nor a backend and the shared log-opts, declare the same key.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { BACKENDS } from '../../src/backends/index.ts';
import { OPTION_TABLES } from '../../src/lifecycle/options.ts';
import { JSON_OPTIONS } from '../../src/shaping/options.ts';
import { type OptionSchema, markedSection, optionTable, overlappingKeys, schemaKeys } from '../../src/options/schema.ts';
import { ALL_SETTINGS } from '../../src/settings.ts';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('options as a schema', () => {
  const tables: { name: string; schema: OptionSchema; what?: string }[] = [
    ...OPTION_TABLES,
    ...BACKENDS.map((f) => ({ name: f.name, schema: f.options })),
    { name: 'settings', schema: ALL_SETTINGS, what: 'setting' },
  ];
  for (const { name, schema, what } of tables.filter((s) => s.schema.length > 0)) {
    it(`README.md's ${name} table is its schema's (npm run docs:options)`, () => {
      const section = markedSection(readme, name);
      assert.ok(section, `no <!-- options:${name} --> markers`);
      assert.equal(readme.slice(section.start, section.end), optionTable(schema, what) + '\n');
    });
  }

  it('no two backends declare the same key, nor a shared log-opt', () => {
    const daemon = ['backend', 'mode', 'max-buffer-size'];
    const schemas = [{ name: 'daemon', schema: daemon.map((key) => ({ key, type: 'string' as const, doc: key })) }, { name: 'parse-json', schema: JSON_OPTIONS }, ...OPTION_TABLES, ...BACKENDS.map((f) => ({ name: f.name, schema: f.options }))];
    assert.deepEqual(overlappingKeys(schemas), []);
    for (const factory of BACKENDS) assert.ok(schemaKeys(factory.options).every((key) => key === key.toLowerCase()), factory.name);
  });
});

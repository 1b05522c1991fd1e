// npm run docs:options: writes each backend's option table (the other log-opts', the plugin settings') into README.md, between
// `<!-- options:NAME -->` and `<!-- /options:NAME -->`, from its schema (src/options/schema.ts).
// test/unit/options-docs.test.ts fails when the README and the schemas disagree.
import fs from 'node:fs';
import { BACKENDS } from '../src/backends/index.ts';
import { OPTION_TABLES } from '../src/lifecycle/options.ts';
import { type OptionSchema, markedSection, optionTable } from '../src/options/schema.ts';
import { ALL_SETTINGS } from '../src/settings.ts';

const file = new URL('../README.md', import.meta.url);
let readme = fs.readFileSync(file, 'utf8');
const tables: { name: string; schema: OptionSchema; what?: string }[] = [...OPTION_TABLES, ...BACKENDS.map((f) => ({ name: f.name, schema: f.options })), { name: 'settings', schema: ALL_SETTINGS, what: 'setting' }];
for (const { name, schema, what } of tables) {
  if (schema.length === 0) continue;
  const section = markedSection(readme, name);
  if (!section) throw new Error(`README.md has no <!-- options:${name} --> markers`);
  readme = readme.slice(0, section.start) + optionTable(schema, what) + '\n' + readme.slice(section.end);
}
fs.writeFileSync(file, readme);

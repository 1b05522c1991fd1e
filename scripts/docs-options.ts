// npm run docs:options: writes each backend's option table (and the shared controls') into README.md, between
// `<!-- options:NAME -->` and `<!-- /options:NAME -->`, from its schema (src/options/schema.ts).
// test/unit/options-docs.test.ts fails when the README and the schemas disagree.
import fs from 'node:fs';
import { BACKENDS } from '../src/backends/index.ts';
import { OPTION_TABLES } from '../src/lifecycle/options.ts';
import { markedSection, optionTable } from '../src/options/schema.ts';

const file = new URL('../README.md', import.meta.url);
let readme = fs.readFileSync(file, 'utf8');
for (const { name, schema } of [...OPTION_TABLES, ...BACKENDS.map((f) => ({ name: f.name, schema: f.options }))]) {
  if (schema.length === 0) continue;
  const section = markedSection(readme, name);
  if (!section) throw new Error(`README.md has no <!-- options:${name} --> markers`);
  readme = readme.slice(0, section.start) + optionTable(schema) + '\n' + readme.slice(section.end);
}
fs.writeFileSync(file, readme);

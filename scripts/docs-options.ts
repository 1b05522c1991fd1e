// npm run docs:options: writes each backend's option table into README.md, between
// `<!-- options:NAME -->` and `<!-- /options:NAME -->`, from its schema (src/options/schema.ts).
// test/unit/options-docs.test.ts fails when the README and the schemas disagree.
import fs from 'node:fs';
import { BACKENDS } from '../src/backends/index.ts';
import { markedSection, optionTable } from '../src/options/schema.ts';

const file = new URL('../README.md', import.meta.url);
let readme = fs.readFileSync(file, 'utf8');
for (const factory of BACKENDS) {
  if (factory.options.length === 0) continue;
  const section = markedSection(readme, factory.name);
  if (!section) throw new Error(`README.md has no <!-- options:${factory.name} --> markers`);
  readme = readme.slice(0, section.start) + optionTable(factory.options) + '\n' + readme.slice(section.end);
}
fs.writeFileSync(file, readme);

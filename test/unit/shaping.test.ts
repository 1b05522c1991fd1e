import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extraAttributes } from '../../src/shaping/attributes.ts';
import { compileGoRegexp } from '../../src/shaping/go-regexp.ts';
import { containerContext, type ContainerInfo } from '../../src/shaping/container.ts';
import { type TagInfo, TemplateError, compileTag } from '../../src/shaping/tag.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';

const FULL_ID = '3f4e1a2b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b';
const IMAGE_ID = 'sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d';

const info: TagInfo = {
  id: FULL_ID,
  name: '/web-1',
  imageId: IMAGE_ID,
  imageName: 'nginx:alpine',
  entrypoint: '/docker-entrypoint.sh',
  args: ['nginx', '-g', 'daemon off;'],
  env: ['PATH=/usr/bin', 'MODE=prod'],
  labels: { 'com.example.team': 'Payments', tier: 'front' },
  config: { tag: 'x' },
  daemonName: 'docker',
  hostname: 'host-a',
};

const tag = (template: string) => compileTag(template).execute(info);

describe('tag templates', () => {
  it('resolves the placeholders Docker documents', () => {
    assert.equal(tag('{{.ID}}'), '3f4e1a2b5c6d');
    assert.equal(tag('{{.FullID}}'), FULL_ID);
    assert.equal(tag('{{.Name}}'), 'web-1');
    assert.equal(tag('{{.ImageID}}'), '9c7a54a9a43c');
    assert.equal(tag('{{.ImageFullID}}'), IMAGE_ID);
    assert.equal(tag('{{.ImageName}}'), 'nginx:alpine');
    assert.equal(tag('{{.DaemonName}}'), 'docker');
    assert.equal(tag('{{.Hostname}}'), 'host-a');
    assert.equal(tag('{{.Command}}'), '/docker-entrypoint.sh nginx -g daemon off;');
  });

  it('mixes text and actions, and reaches raw Info fields and functions', () => {
    assert.equal(tag('docker/{{.ImageName}}/{{.Name}}/{{.ID}}'), 'docker/nginx:alpine/web-1/3f4e1a2b5c6d');
    assert.equal(tag('{{.ContainerName}}'), '/web-1');
    assert.equal(tag('{{index .ContainerLabels "com.example.team"}}'), 'Payments');
    assert.equal(tag('{{.ContainerLabels.tier}}'), 'front');
    assert.equal(tag('{{.Name | upper}}'), 'WEB-1');
    assert.equal(tag('{{index .ContainerLabels "tier" | upper}}'), 'FRONT');
    assert.equal(tag('{{truncate .FullID 4}}'), '3f4e');
    assert.equal(tag('{{pad .Name 1 2}}'), ' web-1  ');
    assert.equal(tag('{{join .ContainerArgs "+"}}'), 'nginx+-g+daemon off;');
    assert.equal(tag('{{json .Name}}'), '"web-1"');
    assert.equal(tag('{{title "hello world"}}'), 'Hello World');
    assert.equal(tag('{{/* a comment */}}x {{- " y" -}} z'), 'x yz');
    assert.equal(tag('{{.ContainerArgs}}'), '[nginx -g daemon off;]');
  });

  it('rejects what it cannot evaluate instead of producing a wrong tag', () => {
    for (const bad of ['{{.Nope}}', '{{nope .Name}}', '{{.Name', '{{if .Name}}x{{end}}', '{{.Name | .ID}}', '{{}}', '{{printf "%s" .Name}}', '{{lower (.Name)}}']) {
      assert.throws(() => tag(bad), TemplateError, bad);
    }
    assert.throws(() => tag('{{truncate .Name "x"}}'), /truncate: expected a number/);
    assert.throws(() => tag('{{upper .Name .ID}}'), /wrong number of args for upper/);
  });
});

describe('extra attributes', () => {
  const labels = { a: '1', b: '2', 'com.x.env': 'label' };
  const env = ['A=env-a', 'B=', 'X_KEY=secret', 'NOEQUALS'];

  it('picks labels, labels-regex, env and env-regex in moby\'s order, later ones overwriting', () => {
    const spec = { labels: ['a', 'missing'], labelsRegex: compileGoRegexp('^com\\.'), env: ['A', 'B'], envRegex: compileGoRegexp('KEY$') };
    assert.deepEqual(extraAttributes(spec, labels, env), [['a', '1'], ['com.x.env', 'label'], ['A', 'env-a'], ['B', ''], ['X_KEY', 'secret']]);
    // A label and an env var of the same name: env wins.
    const clash = { labels: ['a'], labelsRegex: null, env: ['a'], envRegex: null };
    assert.deepEqual(extraAttributes(clash, labels, ['a=from-env']), [['a', 'from-env']]);
  });

  it('skips env options when the container has no env, and matches regexps anywhere in the key', () => {
    const spec = { labels: [], labelsRegex: compileGoRegexp('x'), env: ['A'], envRegex: null };
    assert.deepEqual(extraAttributes(spec, labels, []), [['com.x.env', 'label']]);
    assert.deepEqual(extraAttributes({ ...spec, labelsRegex: compileGoRegexp('(?i)COM') }, labels, []), [['com.x.env', 'label']]);
  });
});

describe('container context', () => {
  it('executes the tag (default {{.ID}}) and resolves attributes once', () => {
    const wire: ContainerInfo = { ...info, created: '2026-01-01T00:00:00Z', config: { labels: 'tier', env: 'MODE' } };
    const ctx = containerContext(wire, parseLogOptions(wire.config, []).shaping, 'host-b');
    assert.equal(ctx.tag, '3f4e1a2b5c6d');
    assert.equal(ctx.tagSet, false);
    assert.equal(ctx.name, 'web-1');
    assert.equal(ctx.hostname, 'host-b');
    assert.deepEqual(ctx.attributes, [['tier', 'front'], ['MODE', 'prod']]);
    const tagged = containerContext(wire, parseLogOptions({ tag: '{{.Name}}@{{.Hostname}}' }, []).shaping, 'host-b');
    assert.equal(tagged.tag, 'web-1@host-b');
    assert.equal(tagged.tagSet, true);
    // Set to the default itself still counts as set; empty is unset, as in Docker.
    assert.equal(containerContext(wire, parseLogOptions({ tag: '{{.ID}}' }, []).shaping).tagSet, true);
    assert.equal(containerContext(wire, parseLogOptions({ tag: '' }, []).shaping).tagSet, false);
  });
});

describe('log redaction', () => {
  it('masks credentials in URLs quoted by an error', async () => {
    const { redact } = await import('../../src/observability/log.ts');
    assert.equal(redact('connect ECONNREFUSED https://elastic:s3cret@es.local:9200/_bulk'), 'connect ECONNREFUSED https://***@es.local:9200/_bulk');
    assert.equal(redact('tcp://host:514 refused'), 'tcp://host:514 refused');
  });
});

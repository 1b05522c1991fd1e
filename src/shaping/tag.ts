// The `tag` log-opt: a Go text/template executed against the container's logger Info, as
// moby's loggerutils.ParseLogTag does. Only the subset Docker documents is understood —
// fields and methods of Info, pipelines, the functions of moby's templates package and
// `index`/`len` — and anything else is a TemplateError at StartLogging, never a wrong tag.

export class TemplateError extends Error {}

/** The logger Info fields a template can reach (moby daemon/logger/loginfo.go). */
export interface TagInfo {
  /** Full 64-hex id. */
  id: string;
  /** With the daemon's leading '/'. */
  name: string;
  imageId: string;
  imageName: string;
  entrypoint: string;
  args: string[];
  env: string[];
  labels: Record<string, string>;
  config: Record<string, string>;
  daemonName: string;
  hostname: string;
}

/** Docker's Info.Command(): the entrypoint and its arguments joined by spaces. */
export function dockerCommand(entrypoint: string, args: readonly string[]): string {
  return [entrypoint, ...args].join(' ');
}

type Value = string | number | readonly string[] | Readonly<Record<string, string>>;

// Info's methods (ID, Name, ...) and its raw fields. ContainerCreated is a Go time.Time
// whose printed form nobody puts in a tag: it is left out rather than printed differently.
const FIELDS: Record<string, (i: TagInfo) => Value> = {
  ID: (i) => truncateId(i.id),
  FullID: (i) => i.id,
  Name: (i) => i.name.replace(/^\//, ''),
  Command: (i) => dockerCommand(i.entrypoint, i.args),
  ImageID: (i) => truncateId(i.imageId),
  ImageFullID: (i) => i.imageId,
  ImageName: (i) => i.imageName,
  Hostname: (i) => i.hostname,
  DaemonName: (i) => i.daemonName,
  ContainerID: (i) => i.id,
  ContainerName: (i) => i.name,
  ContainerEntrypoint: (i) => i.entrypoint,
  ContainerArgs: (i) => i.args,
  ContainerImageID: (i) => i.imageId,
  ContainerImageName: (i) => i.imageName,
  ContainerEnv: (i) => i.env,
  ContainerLabels: (i) => i.labels,
  Config: (i) => i.config,
};

/** Fields whose keys `.Field.key` reaches, as Go templates reach into maps. */
const MAP_FIELDS = new Set(['ContainerLabels', 'Config']);

/** moby's stringid.TruncateID: drop an algorithm prefix, keep 12 characters. */
function truncateId(id: string): string {
  const colon = id.indexOf(':');
  return (colon >= 0 ? id.slice(colon + 1) : id).slice(0, 12);
}

type Fn = (args: Value[]) => Value;

function str(v: Value | undefined, fn: string): string {
  if (typeof v !== 'string') throw new TemplateError(`${fn}: expected a string argument`);
  return v;
}

function int(v: Value | undefined, fn: string): number {
  if (typeof v !== 'number') throw new TemplateError(`${fn}: expected a number argument`);
  return v;
}

function arity(fn: string, args: Value[], n: number): void {
  if (args.length !== n) throw new TemplateError(`wrong number of args for ${fn}: want ${n} got ${args.length}`);
}

// moby's templates.basicFunctions, plus the text/template builtins a tag might use.
const FUNCTIONS: Record<string, Fn> = {
  lower: (a) => (arity('lower', a, 1), str(a[0], 'lower').toLowerCase()),
  upper: (a) => (arity('upper', a, 1), str(a[0], 'upper').toUpperCase()),
  title: (a) => (arity('title', a, 1), str(a[0], 'title').replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, sep: string, c: string) => sep + c.toUpperCase())),
  split: (a) => (arity('split', a, 2), str(a[0], 'split').split(str(a[1], 'split'))),
  join: (a) => {
    arity('join', a, 2);
    if (!Array.isArray(a[0])) throw new TemplateError('join: expected a list');
    return (a[0] as string[]).join(str(a[1], 'join'));
  },
  pad: (a) => {
    arity('pad', a, 3);
    const s = str(a[0], 'pad');
    return s === '' ? s : ' '.repeat(int(a[1], 'pad')) + s + ' '.repeat(int(a[2], 'pad'));
  },
  truncate: (a) => {
    arity('truncate', a, 2);
    const s = str(a[0], 'truncate');
    const n = int(a[1], 'truncate');
    return Buffer.byteLength(s) < n ? s : Buffer.from(s).subarray(0, n).toString();
  },
  json: (a) => (arity('json', a, 1), goJson(a[0]!)),
  len: (a) => {
    arity('len', a, 1);
    const v = a[0]!;
    if (typeof v === 'string') return Buffer.byteLength(v);
    if (typeof v === 'number') throw new TemplateError('len of a number');
    return Array.isArray(v) ? v.length : Object.keys(v).length;
  },
  index: (a) => {
    arity('index', a, 2);
    const [coll, key] = a;
    if (Array.isArray(coll)) {
      const v = (coll as string[])[int(key, 'index')];
      if (v === undefined) throw new TemplateError('index out of range');
      return v;
    }
    if (typeof coll === 'object') return (coll as Record<string, string>)[str(key, 'index')] ?? '';
    throw new TemplateError('index of a value that is neither a map nor a list');
  },
};

/** Go's encoding/json output: HTML characters escaped. */
function goJson(v: Value): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** How Go's fmt prints a value in a template's output. */
function print(v: Value): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `[${v.join(' ')}]`;
  const map = v as Record<string, string>;
  return `map[${Object.keys(map).sort().map((k) => `${k}:${map[k]}`).join(' ')}]`;
}

type Operand = { kind: 'field'; name: string; key: string | undefined } | { kind: 'literal'; value: Value } | { kind: 'func'; name: string };
type Command = Operand[];
type Node = string | Command[];

export interface TagTemplate {
  readonly source: string;
  execute(info: TagInfo): string;
}

/** Parses a template; throws TemplateError naming what it cannot understand. */
export function compileTag(source: string): TagTemplate {
  const nodes = parse(source);
  return {
    source,
    execute(info) {
      let out = '';
      for (const node of nodes) out += typeof node === 'string' ? node : print(runPipeline(node, info));
      return out;
    },
  };
}

function parse(source: string): Node[] {
  const nodes: Node[] = [];
  let rest = source;
  let trimNext = false;
  for (;;) {
    const open = rest.indexOf('{{');
    let text = open < 0 ? rest : rest.slice(0, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text) nodes.push(text);
      return nodes;
    }
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError('unclosed action');
    let action = rest.slice(open + 2, close);
    if (/^-\s/.test(action)) {
      text = text.replace(/\s+$/, '');
      action = action.slice(1);
    }
    trimNext = /\s-$/.test(action);
    if (trimNext) action = action.slice(0, -1);
    if (text) nodes.push(text);
    action = action.trim();
    if (!(action.startsWith('/*') && action.endsWith('*/'))) nodes.push(parsePipeline(action));
    rest = rest.slice(close + 2);
  }
}

const TOKEN = /\s*(?:(\.[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)|("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+)(?![\w.])|([A-Za-z_]\w*)|(\|))/y;

function parsePipeline(action: string): Command[] {
  if (action === '') throw new TemplateError('missing value for command');
  const commands: Command[] = [[]];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < action.length) {
    const start = TOKEN.lastIndex;
    const m = TOKEN.exec(action);
    if (!m) throw new TemplateError(`unsupported syntax at '${action.slice(start).trim()}' in '{{${action}}}'`);
    const [, field, quoted, raw, number, ident, pipe] = m;
    const command = commands.at(-1)!;
    if (pipe) {
      if (command.length === 0) throw new TemplateError(`missing command before '|' in '{{${action}}}'`);
      commands.push([]);
    } else if (field) {
      const [name, key] = field.slice(1).split('.') as [string, string | undefined];
      if (!(name in FIELDS)) throw new TemplateError(`can't evaluate field ${name} (known: ${Object.keys(FIELDS).join(', ')})`);
      if (key !== undefined && !MAP_FIELDS.has(name)) throw new TemplateError(`can't evaluate field ${key} of ${name}`);
      command.push({ kind: 'field', name, key });
    } else if (quoted) {
      command.push({ kind: 'literal', value: JSON.parse(quoted) as string });
    } else if (raw) {
      command.push({ kind: 'literal', value: raw.slice(1, -1) });
    } else if (number) {
      command.push({ kind: 'literal', value: Number(number) });
    } else if (ident) {
      if (!(ident in FUNCTIONS)) throw new TemplateError(`function "${ident}" not defined (known: ${Object.keys(FUNCTIONS).join(', ')})`);
      command.push({ kind: 'func', name: ident });
    }
    if (action.slice(TOKEN.lastIndex).trim() === '') break;
  }
  for (const command of commands) {
    if (command.length === 0) throw new TemplateError(`missing command after '|' in '{{${action}}}'`);
    if (command.slice(1).some((o) => o.kind === 'func')) throw new TemplateError(`nested function calls are not supported in '{{${action}}}'`);
  }
  if (commands[0]!.length > 1 && commands[0]![0]!.kind !== 'func') throw new TemplateError(`can't give argument to non-function in '{{${action}}}'`);
  for (const command of commands.slice(1)) {
    if (command[0]!.kind !== 'func') throw new TemplateError(`only functions can follow '|' in '{{${action}}}'`);
  }
  return commands;
}

function runPipeline(commands: Command[], info: TagInfo): Value {
  let piped: Value | undefined;
  for (const [head, ...rest] of commands) {
    const args = rest.map((o) => operand(o, info));
    if (piped !== undefined) args.push(piped);
    if (head!.kind === 'func') piped = FUNCTIONS[head!.name]!(args);
    else piped = operand(head!, info);
  }
  return piped!;
}

function operand(o: Operand, info: TagInfo): Value {
  if (o.kind === 'field') {
    const v = FIELDS[o.name]!(info);
    return o.key === undefined ? v : ((v as Record<string, string>)[o.key] ?? '');
  }
  if (o.kind === 'literal') return o.value;
  throw new TemplateError(`function ${o.name} used as a value`);
}

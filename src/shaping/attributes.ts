// The `labels`, `labels-regex`, `env` and `env-regex` log-opts: container labels and env
// vars every backend adds to each line, as moby's logger.Info.ExtraAttributes picks them.
// The regexps are Go's, as in Docker (go-regexp.ts).
import type { GoRegexp } from './go-regexp.ts';

export interface AttributeSpec {
  labels: string[];
  labelsRegex: GoRegexp | null;
  env: string[];
  envRegex: GoRegexp | null;
}

/**
 * In moby's order — labels, labels-regex, env, env-regex — later ones overwriting a key an
 * earlier one set; env options are skipped when the container has no env at all.
 */
export function extraAttributes(spec: AttributeSpec, labels: Readonly<Record<string, string>>, env: readonly string[]): [string, string][] {
  const out = new Map<string, string>();
  for (const key of spec.labels) {
    const value = labels[key];
    if (value !== undefined) out.set(key, value);
  }
  if (spec.labelsRegex) {
    for (const [key, value] of Object.entries(labels)) if (spec.labelsRegex.test(key)) out.set(key, value);
  }
  const vars = new Map<string, string>();
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq >= 0) vars.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  if (vars.size === 0) return [...out];
  for (const key of spec.env) {
    const value = vars.get(key);
    if (value !== undefined) out.set(key, value);
  }
  if (spec.envRegex) {
    for (const [key, value] of vars) if (spec.envRegex.test(key)) out.set(key, value);
  }
  return [...out];
}

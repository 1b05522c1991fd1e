// What the shaping stage is configured with, per container: the tag, the extra attributes,
// and how lines are joined and parsed (LineShaping).
import type { AttributeSpec } from './attributes.ts';
import type { LineShaping } from './line-shaper.ts';
import type { RedactionSpec } from './redact.ts';
import type { TagTemplate } from './tag.ts';

export interface ShapingOptions extends LineShaping {
  /** Null: nothing masked. Env values are bound per container (redactorFor). */
  redaction: RedactionSpec | null;
  /** `{{.ID}}` unless `tag` is set. */
  tag: TagTemplate;
  /** `tag` was given (not empty, which Docker treats as unset). */
  tagSet: boolean;
  /** `tag` was given as the empty string (not absent). */
  tagEmpty: boolean;
  attributes: AttributeSpec;
}

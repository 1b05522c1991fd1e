// What every backend knows of its container, resolved once per StartLogging: the tag
// template executed and the extra attributes picked, so no backend repeats either.
import os from 'node:os';
import { extraAttributes } from './attributes.ts';
import { dockerCommand } from './tag.ts';
import type { ShapingOptions } from './options.ts';

/** A container as the daemon describes it at StartLogging (Info in logdriver-protocol.md §3). */
export interface ContainerInfo {
  /** Full 64-hex id; also the store's folder name, so it is checked strictly. */
  id: string;
  /** With the daemon's leading '/'. */
  name: string;
  /** The log-opts, unfiltered (daemon keys such as `mode` included). */
  config: Record<string, string>;
  /** `sha256:<hex>`. */
  imageId: string;
  /** As the user typed it (`nginx:alpine`, a digest, ...). */
  imageName: string;
  /** RFC 3339, as the daemon sent it. */
  created: string;
  entrypoint: string;
  args: string[];
  /** `K=V` entries; may hold secrets: never log them. */
  env: string[];
  labels: Record<string, string>;
  daemonName: string;
}

/** What a backend knows of its container, resolved once per StartLogging. */
export interface ContainerContext {
  /** Full 64-hex id. */
  id: string;
  /** Without the daemon's leading '/'. */
  name: string;
  imageId: string;
  imageName: string;
  created: string;
  /** The entrypoint and its arguments joined by spaces, as Docker's Info.Command() prints them. */
  command: string;
  daemonName: string;
  /** The `tag` log-opt's template executed for this container (default `{{.ID}}`). */
  tag: string;
  /**
   * Whether the `tag` log-opt was given: a driver with a default of its own (awslogs names
   * its stream `{{.FullID}}`) uses `tag` only then.
   */
  tagSet: boolean;
  /** From `labels`, `labels-regex`, `env`, `env-regex`, in the built-in drivers' order. */
  attributes: ReadonlyArray<readonly [string, string]>;
  /** The host's name, as the built-in drivers put it in their records. */
  hostname: string;
}

/** Throws TemplateError when the tag template fails on this container. */
export function containerContext(info: ContainerInfo, shaping: ShapingOptions, hostname = os.hostname()): ContainerContext {
  const tag = shaping.tag.execute({
    id: info.id,
    name: info.name,
    imageId: info.imageId,
    imageName: info.imageName,
    entrypoint: info.entrypoint,
    args: info.args,
    env: info.env,
    labels: info.labels,
    config: info.config,
    daemonName: info.daemonName,
    hostname,
  });
  return {
    id: info.id,
    name: info.name.replace(/^\//, ''),
    imageId: info.imageId,
    imageName: info.imageName,
    created: info.created,
    command: dockerCommand(info.entrypoint, info.args),
    daemonName: info.daemonName,
    tag,
    tagSet: shaping.tagSet,
    attributes: extraAttributes(shaping.attributes, info.labels, info.env),
    hostname,
  };
}

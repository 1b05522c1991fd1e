// What every backend knows of its container, resolved once per StartLogging: the tag
// template executed and the extra attributes picked, so no backend repeats either.
import os from 'node:os';
import type { ContainerContext } from '../delivery/backend.ts';
import type { ShapingOptions } from '../lifecycle/options.ts';
import type { ContainerInfo } from '../protocol/wire.ts';
import { extraAttributes } from './attributes.ts';
import { dockerCommand } from './tag.ts';

/** Throws TemplateError when the tag template fails on this container. */
export function containerContext(info: ContainerInfo, shaping: ShapingOptions, hostname = os.hostname()): ContainerContext {
  const tagInfo = {
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
  };
  const tag = shaping.tag.execute(tagInfo);
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
    info: tagInfo,
  };
}

// Every backend logship can ship to, by the name of the Docker driver it stands in for.
import type { BackendFactory } from '../delivery/backend.ts';

export const BACKENDS: readonly BackendFactory<unknown>[] = [];

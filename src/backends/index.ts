// Every backend logship can ship to, by the name of the Docker driver it stands in for.
// `--log-opt backend=NAME` selects from this list; their option keys must not overlap.
import type { BackendFactory } from '../delivery/backend.ts';
import { awslogsFactory } from './awslogs.ts';
import { elasticsearchFactory } from './elasticsearch.ts';
import { fluentdFactory } from './fluentd.ts';
import { gcplogsFactory } from './gcplogs.ts';
import { journaldFactory } from './journald.ts';
import { lokiFactory } from './loki.ts';
import { otlpFactory } from './otlp.ts';
import { syslogFactory } from './syslog.ts';

export const BACKENDS: readonly BackendFactory<unknown>[] = [
  syslogFactory,
  fluentdFactory,
  journaldFactory,
  awslogsFactory,
  gcplogsFactory,
  elasticsearchFactory,
  lokiFactory,
  otlpFactory,
];

// Every backend logship can ship to, by the name of the Docker driver it stands in for.
// `--log-opt backend=NAME` selects from this list; their option keys must not overlap.
import type { AnyBackendFactory } from '../delivery/backend.ts';
import { awslogsFactory } from './awslogs.ts';
import { elasticsearchFactory } from './elasticsearch.ts';
import { fluentdFactory } from './fluentd.ts';
import { gcplogsFactory } from './gcplogs.ts';
import { gelfFactory } from './gelf.ts';
import { journaldFactory } from './journald.ts';
import { kafkaFactory } from './kafka.ts';
import { lokiFactory } from './loki.ts';
import { otlpFactory } from './otlp.ts';
import { splunkFactory } from './splunk.ts';
import { syslogFactory } from './syslog.ts';

export const BACKENDS: readonly AnyBackendFactory[] = [
  syslogFactory,
  fluentdFactory,
  journaldFactory,
  awslogsFactory,
  gcplogsFactory,
  elasticsearchFactory,
  lokiFactory,
  otlpFactory,
  gelfFactory,
  splunkFactory,
  kafkaFactory,
];

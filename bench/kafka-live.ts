// kafka through a real engine: a container writing `seq 1 LINES` (as `make bench` does) with
// `--log-driver logship --log-opt backend=kafka` (the default lz4, json records) while the
// installed plugin ships to librdkafka's mock cluster (kcat, 3 brokers, straight to them, as
// bench/kafka.ts does), against the write time of the same container through the discard-only
// floor plugin, logship with no backend (the store alone: what shipping adds to the write is
// the difference) and json-file, in the same run, ROUNDS rounds interleaved.
// Per round, for kafka: the write time (create to exit, as `make bench` times it), the time
// until the broker held every record (the topic's end offsets, polled every POLL_MS: one topic
// a round, so its count is this container's), the records the broker held when the container
// exited and the lag after it (delivered less written), lines/s to the broker over the whole run
// and the plugin's CPU time per line and peak RSS. Then the check: the end offsets sum to exactly LINES a
// second later (a copy from a retry would show as more), and every record the mock still
// holds (it keeps about 5 MB a partition, so the newest) is on one partition, keyed by the
// container, with `log` its offset + 1: in order, none missing or doubled among them.
// Needs an engine with the plugin installed, and kcat; run as
//   make plugin
//   scripts/isolate.sh STATE_DIR bash -c \
//     'scripts/ensure-docker.sh /tmp/bench-dockerd.pid && make -o plugin install && node_modules/.bin/node bench/kafka-live.ts'
// (the discard plugin is installed here if it is missing, as bench/drivers.ts does).
// Env: PLUGIN (logship:latest), DISCARD (logship-discard:latest), LINES (1000000), ROUNDS (3),
// POLL_MS (50), DELIVERY_TIMEOUT_S (300).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docker } from '../test/e2e/lib/docker-client.ts';
import { ensureTestImage } from '../test/e2e/lib/image.ts';
import { KafkaMock } from '../test/integration/lib/kafka-mock.ts';
import { created, median, runOnce } from './docker-run.ts';
import { PluginProcess } from './plugin-process.ts';

const PLUGIN = process.env.PLUGIN ?? process.env.LOGSHIP_PLUGIN ?? 'logship:latest';
const DISCARD = process.env.DISCARD ?? 'logship-discard:latest';
const LINES = Number(process.env.LINES ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const POLL_MS = Number(process.env.POLL_MS ?? 50);
const DELIVERY_TIMEOUT_S = Number(process.env.DELIVERY_TIMEOUT_S ?? 300);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-bench-kafka-live-'));
const mock = new KafkaMock(path.join(dir, 'mock'));
const f2 = (n: number): string => n.toFixed(2);
const lps = (n: number): string => `${Math.round(n).toLocaleString('en')} lines/s`;
const load = (): string => os.loadavg().map(f2).join(' ');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Admin = InstanceType<typeof import('@platformatic/kafka').Admin>;

/** Records the broker holds in `topic`: its partitions' end offsets summed (0 before it exists). */
async function held(admin: Admin, topic: string): Promise<number> {
  try {
    const metadata = await admin.metadata({ topics: [topic] });
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
    // One partition a call: @platformatic/kafka's listOffsets over partitions led by different
    // brokers returned garbage for all but the first broker's (offset -4294967296, index -1).
    const offsets = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const [listed] = await admin.listOffsets({ topics: [{ name: topic, partitions: [{ partitionIndex: i, timestamp: -1n }] }] });
        const partition = listed?.partitions[0];
        if (partition?.partitionIndex !== i || partition.offset < 0n) throw new Error(`${topic}: partition ${i}'s end offset unreadable`);
        return Number(partition.offset);
      }),
    );
    return offsets.reduce((sum, o) => sum + o, 0);
  } catch {
    // The topic is made by the plugin's first send; until then there is nothing to count.
    return 0;
  }
}

interface KafkaRound {
  write: number;
  delivered: number;
  heldAtExit: number;
  cpuUsPerLine: number;
  /** The plugin's peak RSS during the round (VmHWM, reset at its start), MB. */
  peakMb: number;
}

/** One kafka round: the container on topic `topic`, timed from create to exit and to the broker's last record. */
async function kafkaRound(admin: Admin, image: string, plugin: PluginProcess, topic: string): Promise<KafkaRound> {
  plugin.resetPeak();
  const cpu0 = plugin.cpuSeconds();
  const t0 = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - t0) / 1e9;
  let delivered: number | null = null;
  let exited = false;
  // Polled throughout, so the time the broker held every record is known within POLL_MS (and
  // a lag that grew during the write would show as the count falling behind at exit).
  const poller = (async () => {
    while (since() < DELIVERY_TIMEOUT_S) {
      if ((await held(admin, topic)) >= LINES) {
        delivered = since();
        return;
      }
      await sleep(exited ? POLL_MS : POLL_MS * 2);
    }
  })();
  const { container, seconds } = await runOnce(image, PLUGIN, ['seq', '1', String(LINES)], {
    backend: 'kafka',
    'kafka-brokers': mock.brokers.join(','),
    'kafka-topic': topic,
  });
  exited = true;
  const heldAtExit = await held(admin, topic);
  await poller;
  const cpuUsPerLine = ((plugin.cpuSeconds() - cpu0) * 1e6) / LINES;
  const peakMb = plugin.peakMb();
  if (delivered === null) throw new Error(`${topic}: the broker held ${await held(admin, topic)} of ${LINES} records after ${DELIVERY_TIMEOUT_S} s`);
  await check(admin, topic, container.id);
  return { write: seconds, delivered, heldAtExit, cpuUsPerLine, peakMb };
}

/** Exactly LINES records a second after the last arrived, and the ones the mock still holds in order, this container's. */
async function check(admin: Admin, topic: string, id: string): Promise<void> {
  await sleep(1000);
  const count = await held(admin, topic);
  if (count !== LINES) throw new Error(`${topic}: ${count} records, expected ${LINES}`);
  const records = await mock.consume(topic);
  if (records.length === 0) throw new Error(`${topic}: no record read back`);
  const partitions = new Set(records.map((r) => r.partition));
  if (partitions.size !== 1) throw new Error(`${topic}: records on partitions ${[...partitions].join(', ')}, expected one (keyed by the container)`);
  for (const r of records) {
    const { log } = JSON.parse(r.value) as { log: string };
    if (r.key !== id || log !== String(r.offset + 1)) throw new Error(`${topic}: offset ${r.offset} holds ${log} keyed ${r.key}, expected ${r.offset + 1} keyed ${id}`);
  }
  if (records.at(-1)!.offset !== LINES - 1) throw new Error(`${topic}: the last record read back is at offset ${records.at(-1)!.offset}, expected ${LINES - 1}`);
  console.log(`    checked: ${count} records; the ${records.length.toLocaleString('en')} the mock still holds (offsets ${records[0]!.offset}..${records.at(-1)!.offset}) are lines ${records[0]!.offset + 1}..${LINES} in order`);
}

async function main(): Promise<void> {
  const image = await ensureTestImage();
  await docker.getPlugin(PLUGIN, undefined).inspect();
  try {
    await docker.getPlugin(DISCARD, undefined).inspect();
  } catch {
    execFileSync('bench/discard-plugin/install.sh', [DISCARD, `READ_LINES=${LINES}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  await mock.start();
  const lib = await import('@platformatic/kafka');
  const admin = new lib.Admin({ clientId: 'bench-kafka-live', bootstrapBrokers: mock.brokers });
  const plugin = await PluginProcess.find(PLUGIN);
  const floorPlugin = await PluginProcess.find(DISCARD);
  const info = await docker.version();
  console.log(
    `kafka live bench: seq 1 ${LINES} in a container, ${ROUNDS} rounds; ${PLUGIN} backend=kafka (lz4, json) to the mock cluster ` +
      `(kcat, ${mock.brokers.length} brokers), against ${DISCARD} (floor) and json-file; engine ${info.Version}, ${os.cpus().length} CPUs, load ${load()}`,
  );
  try {
    // Warm-up, not counted: the image, each plugin's paths and the kafka library loaded by the plugin.
    await runOnce(image, PLUGIN, ['seq', '1', '1000'], { backend: 'kafka', 'kafka-brokers': mock.brokers.join(','), 'kafka-topic': 'live-warmup' });
    await runOnce(image, DISCARD, ['seq', '1', '1000']);
    await runOnce(image, 'json-file', ['seq', '1', '1000']);
    await runOnce(image, PLUGIN, ['seq', '1', '1000']);
    const kafka: KafkaRound[] = [];
    const floor: number[] = [];
    const floorCpu: number[] = [];
    const json: number[] = [];
    const store: number[] = [];
    const storeCpu: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const k = await kafkaRound(admin, image, plugin, `live-${round}`);
      kafka.push(k);
      console.log(
        `  round ${round} (load ${load()}): kafka write ${f2(k.write)} s, broker held every record at ${f2(k.delivered)} s ` +
          `(${k.heldAtExit.toLocaleString('en')} at exit, lag after exit ${f2(k.delivered - k.write)} s), ${lps(LINES / k.delivered)} to the broker, plugin ${f2(k.cpuUsPerLine)} µs CPU/line, peak RSS ${k.peakMb.toFixed(0)} MB`,
      );
      const cpu0 = floorPlugin.cpuSeconds();
      floor.push((await runOnce(image, DISCARD, ['seq', '1', String(LINES)])).seconds);
      floorCpu.push(((floorPlugin.cpuSeconds() - cpu0) * 1e6) / LINES);
      const cpu1 = plugin.cpuSeconds();
      store.push((await runOnce(image, PLUGIN, ['seq', '1', String(LINES)])).seconds);
      storeCpu.push(((plugin.cpuSeconds() - cpu1) * 1e6) / LINES);
      json.push((await runOnce(image, 'json-file', ['seq', '1', String(LINES)])).seconds);
      console.log(
        `  round ${round} (load ${load()}): floor write ${f2(floor.at(-1)!)} s (${f2(floorCpu.at(-1)!)} µs CPU/line), ` +
          `logship store only ${f2(store.at(-1)!)} s (${f2(storeCpu.at(-1)!)} µs CPU/line), json-file write ${f2(json.at(-1)!)} s`,
      );
      // Each round's containers removed, their stores with them: the next round starts as this one did.
      await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true }).catch(() => {})));
    }
    const write = median(kafka.map((k) => k.write));
    const delivered = median(kafka.map((k) => k.delivered));
    const lag = median(kafka.map((k) => k.delivered - k.write));
    console.log(`median of ${ROUNDS} (load ${load()}):`);
    console.log(
      `  write: kafka ${f2(write)} s (${lps(LINES / write)}), floor ${f2(median(floor))} s (${lps(LINES / median(floor))}), logship store only ${f2(median(store))} s, json-file ${f2(median(json))} s: ` +
        `kafka ${f2(write / median(floor))} of the floor's, ${f2(write / median(store))} of the store only's, ${f2(write / median(json))} of json-file's`,
    );
    console.log(
      `  to the broker: every record at ${f2(delivered)} s, ${lps(LINES / delivered)} over the whole run = ${f2(LINES / delivered / (LINES / median(floor)))} of the floor's write rate; ` +
        `lag after exit ${f2(lag)} s (per round ${kafka.map((k) => f2(k.delivered - k.write)).join(' / ')} s)`,
    );
    console.log(
      `  plugin CPU: kafka ${f2(median(kafka.map((k) => k.cpuUsPerLine)))} µs/line (stored and shipped), store only ${f2(median(storeCpu))} µs/line, floor ${f2(median(floorCpu))} µs/line (read and dropped); kafka's peak RSS ${median(kafka.map((k) => k.peakMb)).toFixed(0)} MB`,
    );
  } finally {
    await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true }).catch(() => {})));
    await admin.close();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();

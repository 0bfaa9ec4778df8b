import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type IHeaders } from 'kafkajs';
import { KAFKA_BROKERS } from './infra.js';

export interface ReceivedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: IHeaders;
  json: Record<string, unknown> | null;
}

/**
 * Reads a topic from the current end with a unique consumer group, keeping what `filter` accepts.
 * Start it BEFORE the action under test.
 */
export class TopicCollector {
  readonly messages: ReceivedMessage[] = [];
  private consumer: Consumer | undefined;

  constructor(private readonly topic: string, private readonly filter: (m: ReceivedMessage) => boolean = () => true) {}

  async start(): Promise<this> {
    const kafka = new Kafka({ clientId: 'soma-test', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    // Remember where the topic ends now and start exactly there: no history, no race with the first fetch.
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(this.topic);
    await admin.disconnect();
    this.consumer = kafka.consumer({ groupId: `soma-test-${randomUUID()}`, sessionTimeout: 10_000, heartbeatInterval: 1000 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: false });
    let assigned!: () => void;
    const ready = new Promise<void>((resolve) => (assigned = resolve));
    const consumer = this.consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const { partition, offset } of ends) consumer.seek({ topic: this.topic, partition, offset });
      assigned();
    });
    await this.consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        let json: Record<string, unknown> | null = null;
        try {
          json = message.value ? (JSON.parse(message.value.toString('utf8')) as Record<string, unknown>) : null;
        } catch {
          json = null;
        }
        const m: ReceivedMessage = { topic, partition, offset: message.offset, key: message.key?.toString('utf8') ?? null, value: message.value, headers: message.headers ?? {}, json };
        if (this.filter(m)) this.messages.push(m);
      },
    });
    await ready;
    return this;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

export type PartitionOffsets = Array<{ partition: number; offset: string }>;

/** Where each partition of a topic ends now: pass it to `readFrom` later to read only what came after. */
export async function topicEnds(topic: string): Promise<PartitionOffsets> {
  const admin = new Kafka({ clientId: 'soma-test-admin', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high }));
  } finally {
    await admin.disconnect();
  }
}

/** Every message of `topic` from `from` up to the current end of each partition, filtered. */
export async function readFrom(topic: string, from: PartitionOffsets, filter: (m: ReceivedMessage) => boolean = () => true): Promise<ReceivedMessage[]> {
  const ends = new Map((await topicEnds(topic)).map((p) => [p.partition, BigInt(p.offset)]));
  const next = new Map(from.map((p) => [p.partition, BigInt(p.offset)]));
  const kafka = new Kafka({ clientId: 'soma-test-reader', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `soma-test-${randomUUID()}` });
  const found: ReceivedMessage[] = [];
  const finished = () => [...ends].every(([p, end]) => (next.get(p) ?? 0n) >= end);
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const p of from) consumer.seek({ topic, partition: p.partition, offset: p.offset });
    });
    await new Promise<void>((resolve, reject) => {
      if (finished()) return resolve();
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const end = ends.get(partition) ?? 0n;
            if (BigInt(message.offset) < end) {
              let json: Record<string, unknown> | null = null;
              try {
                json = message.value ? (JSON.parse(message.value.toString('utf8')) as Record<string, unknown>) : null;
              } catch {
                json = null;
              }
              const m: ReceivedMessage = { topic, partition, offset: message.offset, key: message.key?.toString('utf8') ?? null, value: message.value, headers: message.headers ?? {}, json };
              if (filter(m)) found.push(m);
            }
            next.set(partition, BigInt(message.offset) + 1n);
            if (finished()) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return found;
}

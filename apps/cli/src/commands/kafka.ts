import type { Command } from 'commander';
import { Kafka, logLevel } from 'kafkajs';
import { ensureTopics } from '@soma/events';
import { SECURITY_EVENT_JSON_SCHEMA } from '@soma/contracts';

/** `soma kafka ensure-topics`, `soma events schema`. */
export function register(program: Command): void {
  program
    .command('kafka')
    .description('Kafka topics of the suite')
    .command('ensure-topics')
    .description('create security.events, security.audit and security.events.dlq if missing')
    .option('--brokers <list>', 'comma-separated brokers', process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092')
    .option('--replication-factor <n>', 'replication factor', process.env['KAFKA_REPLICATION_FACTOR'] ?? '1')
    .action(async (opts: { brokers: string; replicationFactor: string }) => {
      const admin = new Kafka({ clientId: 'soma-cli', brokers: opts.brokers.split(','), logLevel: logLevel.ERROR }).admin();
      await admin.connect();
      try {
        const created = await ensureTopics(admin, Number(opts.replicationFactor));
        process.stdout.write(created.length ? `created: ${created.join(', ')}\n` : 'all topics exist\n');
      } finally {
        await admin.disconnect();
      }
    });
  program
    .command('events')
    .description('the security-event contract')
    .command('schema')
    .description('print the JSON Schema of soma.security.event/v1')
    .action(() => {
      process.stdout.write(`${JSON.stringify(SECURITY_EVENT_JSON_SCHEMA, null, 2)}\n`);
    });
}

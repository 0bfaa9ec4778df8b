import type { Admin } from 'kafkajs';
import { TOPIC_PARTITIONS, Topics } from '@soma/contracts';

/** Create the suite's topics if they do not exist yet (the broker never auto-creates them). */
export async function ensureTopics(admin: Admin, replicationFactor = 1): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = Object.values(Topics).filter((t) => !existing.has(t));
  if (missing.length === 0) return [];
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((topic) => ({
      topic,
      numPartitions: TOPIC_PARTITIONS[topic],
      replicationFactor,
      configEntries: [{ name: 'min.insync.replicas', value: String(Math.min(2, replicationFactor)) }],
    })),
  });
  return missing;
}

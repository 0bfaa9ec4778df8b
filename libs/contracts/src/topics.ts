/** Kafka topic names: defined here and nowhere else. */
export const Topics = {
  /** Every service → audit. Key = tenant. */
  SecurityEvents: 'security.events',
  /** audit → SIEM: persisted records with their chain position. Key = tenant. */
  SecurityAudit: 'security.audit',
  /** Events that failed validation, with the reason and their original bytes. */
  SecurityEventsDlq: 'security.events.dlq',
} as const;
export type TopicName = (typeof Topics)[keyof typeof Topics];

/** Partition counts the project creates the topics with (auto-creation is off on the broker). */
export const TOPIC_PARTITIONS: Readonly<Record<TopicName, number>> = {
  [Topics.SecurityEvents]: 3,
  [Topics.SecurityAudit]: 3,
  [Topics.SecurityEventsDlq]: 1,
};

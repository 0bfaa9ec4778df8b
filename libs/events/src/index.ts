export { SecurityEventPublisher, InvalidSecurityEventError } from './security-event-publisher.js';
export type { SecurityEventPublisherOptions } from './security-event-publisher.js';
export { DurableEventBuffer, EventBufferFullError } from './durable-event-buffer.js';
export type { BufferedEvent } from './durable-event-buffer.js';
export { buildSecurityEvent } from './build-security-event.js';
export type { SecurityEventInput } from './build-security-event.js';
export { ensureTopics } from './kafka-topics.js';
export { splitByBytes, SEND_BYTES_MAX } from './kafka-batches.js';

-- The SIEM stream's identity in Kafka (ADR 0404): the transactional ids of its producers and the pseudo consumer
-- group that holds, per chain, the last chain position committed to security.audit in the same Kafka transaction
-- as the records themselves. Random per database, so that audit deployments sharing a Kafka cluster never fence
-- each other or read each other's positions.
CREATE TABLE audit_stream_identity (
  singleton  BOOLEAN     PRIMARY KEY DEFAULT true CHECK (singleton),
  stream_id  UUID        NOT NULL DEFAULT gen_random_uuid(),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO audit_stream_identity DEFAULT VALUES;

GRANT SELECT ON audit_stream_identity TO audit_writer;

-- Audit log: append-only, tamper-evident, partitioned by month (docs/adr/0401, 0402).
-- Runs inside one transaction (the runner's); no BEGIN/COMMIT here.

-- Group roles (cluster-wide, NOLOGIN): deployments grant them to the login roles of the services.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'audit_writer') THEN
    CREATE ROLE audit_writer NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'audit_retention') THEN
    CREATE ROLE audit_retention NOLOGIN;
  END IF;
END
$$;

-- The seed's columns (id, timestamp, event_type, user_id, ip_address INET, details JSONB) plus the
-- contract's fields and the hash chain. `timestamp` is when the audit log recorded the event: it is
-- monotonic per chain, so dropping a month removes a prefix of every chain (ADR 0402);
-- `occurred_at` is the emitter's clock.
CREATE TABLE audit_log (
  id              BIGSERIAL   NOT NULL,
  timestamp       TIMESTAMPTZ NOT NULL,
  occurred_at     TIMESTAMPTZ NOT NULL,
  event_id        UUID        NOT NULL,
  event_type      TEXT        NOT NULL,
  tenant          TEXT        NOT NULL,
  service         TEXT        NOT NULL,
  -- keyed pseudonym HMAC-SHA256(subject key, 'pseudonym'), hex; NULL when the event has no user (ADR 0401)
  user_id         TEXT,
  -- network only: /24 for IPv4, /48 for IPv6
  ip_address      INET,
  -- AES-256-GCM(subject key, canonical JSON {user_id, ip_address, user_agent}): iv(12) ‖ ciphertext ‖ tag(16)
  pii             BYTEA,
  action          TEXT        NOT NULL,
  resource        TEXT        NOT NULL,
  outcome         TEXT        NOT NULL CHECK (outcome IN ('success', 'failure', 'denied', 'error')),
  reason          TEXT,
  details         JSONB       NOT NULL,
  trace_id        TEXT,
  -- the Kafka partition of security.events this row came from: one hash chain per partition
  chain_partition INTEGER     NOT NULL,
  chain_seq       BIGINT      NOT NULL CHECK (chain_seq > 0),
  prev_hash       BYTEA       NOT NULL CHECK (octet_length(prev_hash) = 32),
  hash            BYTEA       NOT NULL CHECK (octet_length(hash) = 32),
  PRIMARY KEY (id, timestamp)
) PARTITION BY RANGE (timestamp);

CREATE INDEX audit_log_timestamp_idx ON audit_log (timestamp);
CREATE INDEX audit_log_event_type_idx ON audit_log (event_type, timestamp);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant, timestamp DESC, id DESC);
CREATE INDEX audit_log_tenant_user_idx ON audit_log (tenant, user_id, timestamp DESC) WHERE user_id IS NOT NULL;
CREATE INDEX audit_log_chain_idx ON audit_log (chain_partition, chain_seq);

-- Idempotency: a unique index on a partitioned table must contain the partition key, and the same
-- event redelivered later gets another `timestamp`; so event ids are deduplicated here (ADR 0402).
CREATE TABLE audit_event_ids (
  event_id  UUID        PRIMARY KEY,
  timestamp TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_event_ids_timestamp_idx ON audit_event_ids (timestamp);

-- The head of each chain, locked FOR UPDATE by the batch transaction that extends it.
CREATE TABLE audit_chain_heads (
  chain_partition INTEGER     PRIMARY KEY,
  last_seq        BIGINT      NOT NULL,
  last_hash       BYTEA       NOT NULL,
  last_timestamp  TIMESTAMPTZ NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Where each chain starts after retention dropped its oldest months (written by audit_drop_partitions_before).
CREATE TABLE audit_chain_floors (
  chain_partition INTEGER     PRIMARY KEY,
  first_seq       BIGINT      NOT NULL,
  prev_hash       BYTEA,
  pruned_before   TIMESTAMPTZ NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Ed25519-signed statements "chain P had hash H at position N" (ADR 0403).
CREATE TABLE audit_checkpoints (
  id              BIGSERIAL   PRIMARY KEY,
  chain_partition INTEGER     NOT NULL,
  chain_seq       BIGINT      NOT NULL,
  hash            BYTEA       NOT NULL,
  row_timestamp   TIMESTAMPTZ NOT NULL,
  signed_at       TIMESTAMPTZ NOT NULL,
  key_id          TEXT        NOT NULL,
  signature       BYTEA       NOT NULL,
  UNIQUE (chain_partition, chain_seq)
);

-- The SIEM outbox: rows of chain P up to published_seq are on security.audit (ADR 0404).
CREATE TABLE audit_siem_cursor (
  chain_partition INTEGER     PRIMARY KEY,
  published_seq   BIGINT      NOT NULL DEFAULT 0,
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Crypto-shredding (ADR 0401): one data key per subject, wrapped with AES-256-GCM under AUDIT_KEK.
-- Erasure = DELETE of the row (by the retention service, role audit_retention).
CREATE TABLE audit_subject_keys (
  tenant     TEXT        NOT NULL,
  user_id    TEXT        NOT NULL,
  key        BYTEA       NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, user_id)
);

-- Append-only: UPDATE, DELETE and TRUNCATE are refused unless the session's user is a member of
-- audit_retention (superusers are members of every role: the chain, not this trigger, is what
-- catches a DBA who edits rows).
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF pg_has_role(current_user, 'audit_retention', 'MEMBER') THEN
    IF TG_LEVEL = 'ROW' THEN
      RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only: % refused for role %', TG_OP, current_user
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Monthly partitions audit_log_yYYYYmMM from the month of `from_ts` to `months_ahead` months later.
-- Idempotent; called by the audit service at start-up and daily, and by `soma audit partitions`.
CREATE FUNCTION audit_log_ensure_partitions(months_ahead INTEGER DEFAULT 3, from_ts TIMESTAMPTZ DEFAULT now())
RETURNS SETOF TEXT
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  month_start TIMESTAMPTZ;
  part_name TEXT;
BEGIN
  IF months_ahead < 0 OR months_ahead > 36 THEN
    RAISE EXCEPTION 'months_ahead must be between 0 and 36';
  END IF;
  FOR i IN 0..months_ahead LOOP
    month_start := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(months => i);
    part_name := 'audit_log_y' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY') || 'm' || to_char(month_start AT TIME ZONE 'UTC', 'MM');
    IF to_regclass(part_name) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
        part_name, month_start, month_start + interval '1 month');
      RETURN NEXT part_name;
    END IF;
  END LOOP;
END
$$;

-- Retention's one cheap step: drop every monthly partition entirely before `cutoff`, forget those
-- events' ids, and record where each chain now starts so VerifyChain accepts the new first link.
CREATE FUNCTION audit_drop_partitions_before(cutoff TIMESTAMPTZ)
RETURNS SETOF TEXT
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  part RECORD;
  upper_bound TIMESTAMPTZ;
  dropped_until TIMESTAMPTZ := NULL;
  chain RECORD;
BEGIN
  FOR part IN
    SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'audit_log'::regclass
    ORDER BY c.relname
  LOOP
    upper_bound := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
    IF upper_bound IS NOT NULL AND upper_bound <= cutoff THEN
      EXECUTE format('DROP TABLE %I', part.relname);
      dropped_until := GREATEST(dropped_until, upper_bound);
      RETURN NEXT part.relname;
    END IF;
  END LOOP;
  IF dropped_until IS NOT NULL THEN
    DELETE FROM audit_event_ids WHERE timestamp < dropped_until;
    FOR chain IN SELECT chain_partition, last_seq FROM audit_chain_heads LOOP
      INSERT INTO audit_chain_floors AS f (chain_partition, first_seq, prev_hash, pruned_before)
      SELECT chain.chain_partition,
             COALESCE((SELECT min(chain_seq) FROM audit_log WHERE chain_partition = chain.chain_partition), chain.last_seq + 1),
             (SELECT prev_hash FROM audit_log WHERE chain_partition = chain.chain_partition ORDER BY chain_seq LIMIT 1),
             dropped_until
      ON CONFLICT (chain_partition) DO UPDATE
        SET first_seq = EXCLUDED.first_seq, prev_hash = EXCLUDED.prev_hash,
            pruned_before = EXCLUDED.pruned_before, updated_at = now();
    END LOOP;
  END IF;
END
$$;

SELECT audit_log_ensure_partitions(3, now() - interval '1 month');

REVOKE ALL ON FUNCTION audit_log_ensure_partitions(INTEGER, TIMESTAMPTZ) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_drop_partitions_before(TIMESTAMPTZ) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_log_ensure_partitions(INTEGER, TIMESTAMPTZ) TO audit_writer, audit_retention;
GRANT EXECUTE ON FUNCTION audit_drop_partitions_before(TIMESTAMPTZ) TO audit_retention;

GRANT SELECT, INSERT ON audit_log, audit_event_ids, audit_checkpoints, audit_subject_keys TO audit_writer;
GRANT SELECT, INSERT, UPDATE ON audit_chain_heads, audit_siem_cursor TO audit_writer;
GRANT SELECT ON audit_chain_floors TO audit_writer;
GRANT USAGE ON SEQUENCE audit_log_id_seq, audit_checkpoints_id_seq TO audit_writer;

GRANT SELECT, DELETE ON audit_log, audit_event_ids, audit_subject_keys TO audit_retention;
GRANT SELECT ON audit_chain_heads, audit_chain_floors, audit_checkpoints TO audit_retention;

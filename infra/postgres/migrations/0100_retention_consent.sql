-- Consent records (retention service, ADR 0501): explicit opt-in decisions per (tenant, user, purpose).
-- Append-only history; the newest row per purpose is the current decision; no row = not granted.
-- GDPR erasure deletes a user's rows (they are personal data); the data_erased audit event remains.
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

CREATE TABLE consent_records (
  id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant         TEXT        NOT NULL CHECK (length(tenant) BETWEEN 1 AND 128),
  user_id        TEXT        NOT NULL CHECK (length(user_id) BETWEEN 1 AND 256),
  purpose        TEXT        NOT NULL CHECK (purpose ~ '^[a-z0-9][a-z0-9_.:-]{0,63}$'),
  granted        BOOLEAN     NOT NULL,
  -- where the decision was captured (web:settings, support …) and which consent text version was shown
  source         TEXT        NOT NULL DEFAULT '',
  policy_version TEXT        NOT NULL DEFAULT '',
  -- 'self' or '<tenant>/<sub>' of the operator who recorded it
  recorded_by    TEXT        NOT NULL,
  -- clock_timestamp: two decisions in one transaction still order by time
  recorded_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX consent_records_subject_idx ON consent_records (tenant, user_id, purpose, id);

-- Only appends and erasure: a decision is never edited in place.
CREATE FUNCTION consent_records_refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'consent_records is append-only: UPDATE refused' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER consent_records_append_only BEFORE UPDATE ON consent_records
  FOR EACH ROW EXECUTE FUNCTION consent_records_refuse_update();

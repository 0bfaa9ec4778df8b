import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { callRetention, retentionConnectionOptions, type RetentionCliOptions } from './retention.js';

interface SubjectOptions extends RetentionCliOptions {
  tenant: string;
  user: string;
}

/**
 * `soma gdpr export | erase | consent record | consent get`: data-subject requests through the retention
 * service over gRPC (so each one is authorised and audited there, never run around it).
 */
export function register(program: Command): void {
  const gdpr = program.command('gdpr').description('GDPR data-subject requests (the retention service, over gRPC)');

  retentionConnectionOptions(gdpr.command('export').description('everything held about a user, as one JSON document (soma.gdpr.export/v1)'))
    .requiredOption('--tenant <tenant>', 'tenant')
    .requiredOption('--user <user_id>', 'user id')
    .option('--out <file>', 'write the document here (mode 0600) instead of stdout')
    .action(async (opts: SubjectOptions & { out?: string }) => {
      const res = await callRetention<{ format: string; document_json: string; sha256: string }>(opts, 'ExportUserData', { tenant: opts.tenant, user_id: opts.user }, 300_000);
      const pretty = `${JSON.stringify(JSON.parse(res.document_json), null, 2)}\n`;
      if (opts.out) {
        writeFileSync(opts.out, pretty, { mode: 0o600 });
        process.stderr.write(`wrote ${opts.out} (${res.format}, sha256 of the compact document ${res.sha256})\n`);
      } else {
        process.stdout.write(pretty);
        process.stderr.write(`${res.format}, sha256 of the compact document ${res.sha256}\n`);
      }
    });

  retentionConnectionOptions(gdpr.command('erase').description('erase a user: platform rows, consent, API keys and tokens, audit subject key (irreversible)'))
    .requiredOption('--tenant <tenant>', 'tenant')
    .requiredOption('--user <user_id>', 'user id')
    .option('--reason <text>', 'ticket or reference for the audit record (no personal data)', '')
    .option('--yes', 'confirm the irreversible erasure', false)
    .action(async (opts: SubjectOptions & { reason: string; yes: boolean }) => {
      if (!opts.yes) throw new Error('erasure is irreversible: repeat with --yes');
      const res = await callRetention<Record<string, unknown>>(opts, 'EraseUserData', { tenant: opts.tenant, user_id: opts.user, reason: opts.reason }, 300_000);
      process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    });

  const consent = gdpr.command('consent').description('consent records (explicit opt-in per purpose, with history)');
  retentionConnectionOptions(consent.command('record').description('record an opt-in (--grant) or a withdrawal (--withdraw)'))
    .requiredOption('--tenant <tenant>', 'tenant')
    .requiredOption('--user <user_id>', 'user id')
    .requiredOption('--purpose <purpose>', 'purpose, e.g. marketing, analytics')
    .option('--grant', 'the user opted in')
    .option('--withdraw', 'the user withdrew consent')
    .option('--source <where>', 'where it was captured, e.g. support:ticket-42', 'cli')
    .option('--policy-version <v>', 'version of the consent text shown', '')
    .action(async (opts: SubjectOptions & { purpose: string; grant?: boolean; withdraw?: boolean; source: string; policyVersion: string }) => {
      if (Boolean(opts.grant) === Boolean(opts.withdraw)) throw new Error('give exactly one of --grant or --withdraw');
      const res = await callRetention(opts, 'RecordConsent', {
        tenant: opts.tenant,
        user_id: opts.user,
        purpose: opts.purpose,
        granted: Boolean(opts.grant),
        source: opts.source,
        policy_version: opts.policyVersion,
      });
      process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    });
  retentionConnectionOptions(consent.command('get').description('current consent per purpose (absent = not granted)'))
    .requiredOption('--tenant <tenant>', 'tenant')
    .requiredOption('--user <user_id>', 'user id')
    .option('--purpose <purpose>', 'one purpose (default: all recorded)', '')
    .option('--history', 'include every decision, oldest first', false)
    .action(async (opts: SubjectOptions & { purpose: string; history: boolean }) => {
      const res = await callRetention(opts, 'GetConsent', { tenant: opts.tenant, user_id: opts.user, purpose: opts.purpose, include_history: opts.history });
      process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    });
}

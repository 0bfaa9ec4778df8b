import { Controller, Get, Headers, Inject, Query, Res } from '@nestjs/common';
import { decodeInput } from '@soma/service-runtime';
import { IsISO8601, IsOptional, IsString, Length } from 'class-validator';
import { AUDIT_AUTH } from '../../audit.tokens.js';
import { authorizeTenantRead } from '../../domain/access.js';
import { toView } from '../../domain/audit-query.js';
import { AuditError, AuditErrorCode } from '../../domain/audit.errors.js';
import type { AuditLogReader, PageCursor } from '../../domain/ports.js';
import type { AuditAuthenticator } from '../../infra/export-auth.js';

export const AUDIT_READER = Symbol('audit:reader');

class ExportQueryDto {
  @IsISO8601({ strict: true })
  from!: string;

  @IsISO8601({ strict: true })
  to!: string;

  @IsOptional() @IsString() @Length(1, 128)
  tenant?: string;
}

interface StreamingResponse {
  status(code: number): this;
  setHeader(name: string, value: string): void;
  write(chunk: string): boolean;
  once(event: 'drain', cb: () => void): void;
  end(): void;
  headersSent: boolean;
  destroy(error?: Error): void;
}

const PAGE = 1000;

/** `GET /v1/audit/export?from&to[&tenant]`: the stored records of a time range as NDJSON, oldest first. */
@Controller('v1/audit')
export class AuditExportController {
  constructor(
    @Inject(AUDIT_READER) private readonly reader: AuditLogReader,
    @Inject(AUDIT_AUTH) private readonly auth: AuditAuthenticator,
  ) {}

  @Get('export')
  async export(@Headers('authorization') authorization: string | undefined, @Query() query: Record<string, unknown>, @Res() res: StreamingResponse): Promise<void> {
    const caller = await this.auth.authenticate(authorization);
    const dto = decodeInput(ExportQueryDto, query);
    const from = new Date(dto.from);
    const to = new Date(dto.to);
    if (from > to) throw new AuditError(AuditErrorCode.InvalidQuery, 'from must not be after to');
    const tenant = authorizeTenantRead(caller, 'audit:export', dto.tenant);
    // The first page is read before any byte is sent, so a database failure is still a proper error status.
    let page = await this.reader.exportRange(from, to, tenant, null, PAGE);
    res.status(200);
    res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    try {
      for (;;) {
        for (const row of page) {
          if (!res.write(`${JSON.stringify(toView(row))}\n`)) await new Promise<void>((r) => res.once('drain', r));
        }
        if (page.length < PAGE) break;
        const last = page[page.length - 1]!;
        const after: PageCursor = { timestamp: last.timestamp, id: last.id };
        page = await this.reader.exportRange(from, to, tenant, after, PAGE);
      }
      res.end();
    } catch (e) {
      // Headers are gone: cut the stream so the client sees an incomplete export rather than a short one.
      res.destroy(e as Error);
    }
  }
}

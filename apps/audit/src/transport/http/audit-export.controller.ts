import { Controller, Get, Headers, Inject, Ip, Query, Res } from '@nestjs/common';
import { decodeInput } from '@soma/service-runtime';
import { IsISO8601, IsOptional, IsString, Length } from 'class-validator';
import { AUDIT_AUTH } from '../../audit.tokens.js';
import { AuditQueries } from '../../domain/audit-query.js';
import type { AuditAuthenticator } from '../../infra/export-auth.js';

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
  once(event: 'drain' | 'close', cb: () => void): void;
  off(event: 'drain' | 'close', cb: () => void): void;
  end(): void;
  headersSent: boolean;
  destroyed: boolean;
  destroy(error?: Error): void;
}

/** Resolves true when the response can take more, false when the client went away instead. */
function drained(res: StreamingResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onDrain = () => {
      res.off('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      res.off('drain', onDrain);
      resolve(false);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** `GET /v1/audit/export?from&to[&tenant]`: the stored records of a time range as NDJSON, oldest first. */
@Controller('v1/audit')
export class AuditExportController {
  constructor(
    @Inject(AuditQueries) private readonly queries: AuditQueries,
    @Inject(AUDIT_AUTH) private readonly auth: AuditAuthenticator,
  ) {}

  @Get('export')
  async export(
    @Headers('authorization') authorization: string | undefined,
    @Headers('user-agent') userAgent: string | undefined,
    @Ip() ip: string | undefined,
    @Query() query: Record<string, unknown>,
    @Res() res: StreamingResponse,
  ): Promise<void> {
    const caller = await this.auth.authenticate(authorization);
    const dto = decodeInput(ExportQueryDto, query);
    // Authorises, reads the first page and records the export before any byte is sent: every refusal
    // (403, 503 when the export cannot be recorded, a database failure) is still a proper status.
    const exported = await this.queries.openExport(caller, { from: new Date(dto.from), to: new Date(dto.to), tenant: dto.tenant }, { ip_address: ip ?? null, user_agent: userAgent ?? null });
    res.status(200);
    res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    try {
      let complete = true;
      for await (const record of exported.records()) {
        if (!res.write(`${JSON.stringify(record)}\n`) && !(await drained(res))) {
          complete = false;
          break;
        }
      }
      if (complete) res.end();
      exported.finish(complete);
    } catch (e) {
      exported.finish(false);
      // Headers are gone: cut the stream so the client sees an incomplete export rather than a short one.
      res.destroy(e as Error);
    }
  }
}

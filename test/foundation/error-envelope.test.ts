import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Controller, Get, Module, type DynamicModule } from '@nestjs/common';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommonConfig } from '@soma/config';
import { SomaRuntimeModule, startSomaService, type SomaServiceDefinition, type StartedService } from '@soma/service-runtime';
import { POSTGRES_URL } from '../support/infra.js';
import { freePort } from '../support/ports.js';

// A pool of one connection, held by the test, with a short wait: the state a burst of slow queries leaves behind.
const exhausted = new pg.Pool({ connectionString: POSTGRES_URL, max: 1, connectionTimeoutMillis: 200 });
// Nothing listens on this port: PostgreSQL is unreachable.
let closedPort = 0;

/** Routes that fail the ways a repository can fail when the database is not there, and one that is a bug. */
@Controller('v1/probe')
class ProbeController {
  @Get('exhausted')
  async poolExhausted(): Promise<unknown> {
    return (await exhausted.query('SELECT 1')).rows;
  }

  @Get('unreachable')
  async unreachable(): Promise<unknown> {
    const client = new pg.Client({ host: '127.0.0.1', port: closedPort, user: 'soma', database: 'soma', connectionTimeoutMillis: 1000 });
    await client.connect();
    return (await client.query('SELECT 1')).rows;
  }

  @Get('bug')
  bug(): unknown {
    return (undefined as unknown as { x: { y: number } }).x.y;
  }
}

@Module({})
class ProbeModule {}

describe('error envelope: an unreachable dependency is UNAVAILABLE, a bug is INTERNAL, neither leaks', () => {
  let service: StartedService<CommonConfig>;
  let base = '';
  let held: pg.PoolClient;

  beforeAll(async () => {
    closedPort = await freePort();
    held = await exhausted.connect();
    const ports = { grpc: await freePort(), http: await freePort() };
    const def: SomaServiceDefinition<CommonConfig> = {
      service: 'audit',
      configClass: CommonConfig,
      ports: () => ports,
      module: (deps): DynamicModule => ({ module: ProbeModule, imports: [SomaRuntimeModule.forRoot(deps.runtime)], controllers: [ProbeController] }),
      grpcStatusOf: () => grpc.status.INTERNAL,
      httpStatusOf: () => 500,
    };
    service = await startSomaService(def, { ...process.env, LOG_LEVEL: 'silent', OTEL_ENABLED: 'false', EVENT_BUFFER_PATH: join(mkdtempSync(join(tmpdir(), 'soma-envelope-')), 'buffer.sqlite') });
    base = `http://127.0.0.1:${ports.http}`;
  });
  afterAll(async () => {
    held?.release();
    await exhausted.end();
    await service?.stop();
  });

  async function problem(path: string) {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
  }

  it('a connection pool that cannot hand out a connection in time answers 503 DEPENDENCY_UNAVAILABLE', async () => {
    const r = await problem('/v1/probe/exhausted');
    expect(r.status).toBe(503);
    expect(r.type).toContain('application/problem+json');
    expect(r.body).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', status: 503 });
    expect(JSON.stringify(r.body)).not.toMatch(/timeout exceeded|pg|stack|at /i);
  });

  it('a database that refuses connections answers 503 DEPENDENCY_UNAVAILABLE without its address', async () => {
    const r = await problem('/v1/probe/unreachable');
    expect(r.status).toBe(503);
    expect(r.body['code']).toBe('DEPENDENCY_UNAVAILABLE');
    expect(JSON.stringify(r.body)).not.toContain(String(closedPort));
  });

  it('a bug is still 500 INTERNAL with no detail', async () => {
    const r = await problem('/v1/probe/bug');
    expect(r.status).toBe(500);
    expect(r.body).toMatchObject({ code: 'INTERNAL', detail: 'internal error' });
    expect(typeof r.body['request_id']).toBe('string');
  });
});

import { Controller, Get, Header, HttpCode, Inject, Res } from '@nestjs/common';
import type { ReadinessRegistry, Registry } from '@soma/observability';
import { METRICS, READINESS } from './tokens.js';

/** `/healthz` (the process is alive), `/readyz` (its dependencies answer), `/metrics` (Prometheus). */
@Controller()
export class HealthController {
  constructor(
    @Inject(READINESS) private readonly readiness: ReadinessRegistry,
    @Inject(METRICS) private readonly metrics: Registry,
  ) {}

  @Get('healthz')
  @HttpCode(200)
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async readyz(@Res() res: { status(n: number): { json(b: unknown): void } }): Promise<void> {
    const report = await this.readiness.report();
    res.status(report.ready ? 200 : 503).json({ status: report.ready ? 'ready' : 'not_ready', checks: report.checks });
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  async metricsText(): Promise<string> {
    return this.metrics.metrics();
  }
}

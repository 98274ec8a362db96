import { Controller, Get } from "@nestjs/common";

/**
 * The one health route on the public port: liveness, saying nothing about dependencies or traffic. Readiness and
 * metrics live on the internal listener (`InternalListener`, METRICS_HOST:METRICS_PORT).
 */
@Controller()
export class HealthController {
  @Get("healthz")
  liveness() {
    return { status: "ok" };
  }
}

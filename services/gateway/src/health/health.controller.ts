import { Controller, Get, Header, Inject, Res, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { runReadinessChecks } from "@worldrouter/observability";
import { CONFIG, infrastructureChecks, METRICS } from "@worldrouter/runtime";
import type { FastifyReply } from "fastify";
import type { Registry } from "prom-client";
import { InferenceRelay } from "../inference/inference-relay.js";
import { PaymentVerifierClient } from "../payment-verifier.client.js";

/** Liveness, readiness (Redis, Postgres, payment-verifier reachable, an inference worker alive) and Prometheus metrics. */
@Controller()
export class HealthController implements OnApplicationShutdown {
  private readonly infra: ReturnType<typeof infrastructureChecks>;

  constructor(
    @Inject(CONFIG) config: Config,
    @Inject(METRICS) private readonly metrics: Registry,
    @Inject(PaymentVerifierClient) private readonly verifier: PaymentVerifierClient,
    @Inject(InferenceRelay) private readonly relay: InferenceRelay,
  ) {
    this.infra = infrastructureChecks(config);
  }

  @Get("healthz")
  liveness() {
    return { status: "ok" };
  }

  @Get("readyz")
  async readiness(@Res() reply: FastifyReply) {
    const report = await runReadinessChecks({
      ...this.infra.checks,
      paymentVerifier: async () => void (await this.verifier.ping()),
      inferenceWorkers: async () => {
        if ((await this.relay.liveWorkers()) === 0) throw new Error("no inference worker alive: paid requests could not be served");
      },
    });
    void reply.status(report.ready ? 200 : 503).send(report);
  }

  @Get("metrics")
  @Header("cache-control", "no-store")
  async prometheus(@Res() reply: FastifyReply) {
    void reply.header("content-type", this.metrics.contentType).send(await this.metrics.metrics());
  }

  async onApplicationShutdown() {
    await this.infra.close();
  }
}

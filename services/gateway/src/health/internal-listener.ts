import type { Server } from "node:http";
import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { startHealthServer } from "@worldrouter/observability";
import { CONFIG, infrastructureChecks, METRICS } from "@worldrouter/runtime";
import type { Registry } from "prom-client";
import { InferenceRelay } from "../inference/inference-relay.js";
import { PaymentVerifierClient } from "../payment-verifier.client.js";

/**
 * The gateway's private port (METRICS_HOST:METRICS_PORT): `/readyz` (Redis, Postgres, a payment-verifier answering,
 * an inference worker alive) and `/metrics`, which say too much about traffic and payments for the public port.
 * Started by main.ts once the public port listens, so "ready" means the gateway takes requests.
 */
@Injectable()
export class InternalListener implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly infra: ReturnType<typeof infrastructureChecks>;
  private server: Server | undefined;
  /** SIGTERM received: in-flight requests drain, the load balancer should send no new ones. */
  private draining = false;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(METRICS) private readonly metrics: Registry,
    @Inject(PaymentVerifierClient) private readonly verifier: PaymentVerifierClient,
    @Inject(InferenceRelay) private readonly relay: InferenceRelay,
  ) {
    this.infra = infrastructureChecks(config);
  }

  /** Listens and returns the listener's base URL. */
  async start(): Promise<string> {
    const { host, gatewayPort } = this.config.health;
    this.server = await startHealthServer({
      host,
      port: gatewayPort,
      registry: this.metrics,
      checks: {
        draining: async () => {
          if (this.draining) throw new Error("draining: the gateway is shutting down");
        },
        ...this.infra.checks,
        paymentVerifier: async () => void (await this.verifier.ping()),
        inferenceWorkers: async () => {
          if ((await this.relay.liveWorkers()) === 0) throw new Error("no inference worker alive: paid requests could not be served");
        },
      },
    });
    return `http://${host}:${gatewayPort}`;
  }

  /** Before the public port closes: not ready from now on. */
  beforeApplicationShutdown() {
    this.draining = true;
  }

  async onApplicationShutdown() {
    this.server?.close();
    await this.infra.close();
  }
}

import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import {
  PingResult,
  RPC,
  RPC_SERVICE,
  SessionCredentialResult,
  VerifyPaymentResult,
  type SessionCredentialRequest,
  type VerifyPaymentRequest,
} from "@worldrouter/contracts";
import { CONFIG, createRpcClient, METRICS, type StreamRpcClient } from "@worldrouter/runtime";
import type { Registry } from "prom-client";

/** Readiness pings wait this long: a verifier that slow is not ready. */
const PING_TIMEOUT_MS = 2000;

/** Typed request/response calls to payment-verifier (one replica answers each; see `@worldrouter/runtime` stream-rpc-client). */
@Injectable()
export class PaymentVerifierClient implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly client: StreamRpcClient;

  constructor(@Inject(CONFIG) config: Config, @Inject(METRICS) metrics: Registry) {
    this.client = createRpcClient(config, RPC_SERVICE, metrics);
  }

  async onApplicationBootstrap() {
    await this.client.connect();
  }

  async onApplicationShutdown() {
    await this.client.close();
  }

  /** Times out after RPC_TIMEOUT_MS (`RpcTimeoutError`). */
  async verifyPayment(request: VerifyPaymentRequest): Promise<VerifyPaymentResult> {
    return VerifyPaymentResult.parse(await this.client.call(RPC.verifyPayment, request));
  }

  /** A session credential (open, voucher, topUp, close); times out after RPC_TIMEOUT_MS. */
  async sessionCredential(request: SessionCredentialRequest): Promise<SessionCredentialResult> {
    return SessionCredentialResult.parse(await this.client.call(RPC.sessionCredential, request));
  }

  async ping(): Promise<PingResult> {
    return PingResult.parse(await this.client.call(RPC.ping, {}, PING_TIMEOUT_MS));
  }
}

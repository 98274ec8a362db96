import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from "@nestjs/common";
import type { ClientRedis } from "@nestjs/microservices";
import type { Config } from "@worldrouter/config";
import { PingResult, RPC, VerifyPaymentResult, type VerifyPaymentRequest } from "@worldrouter/contracts";
import { CONFIG, createRpcClient } from "@worldrouter/runtime";
import { firstValueFrom, timeout } from "rxjs";

/** Typed request/response calls to payment-verifier over the Redis transport. */
@Injectable()
export class PaymentVerifierClient implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly client: ClientRedis;

  constructor(@Inject(CONFIG) private readonly config: Config) {
    this.client = createRpcClient(config);
  }

  async onApplicationBootstrap() {
    await this.client.connect();
  }

  async onApplicationShutdown() {
    await this.client.close();
  }

  async verifyPayment(request: VerifyPaymentRequest): Promise<VerifyPaymentResult> {
    return VerifyPaymentResult.parse(await this.call(RPC.verifyPayment, request));
  }

  async ping(): Promise<PingResult> {
    return PingResult.parse(await this.call(RPC.ping, {}, 2000));
  }

  private call(pattern: string, payload: unknown, ms = this.config.gateway.rpcTimeoutMs): Promise<unknown> {
    return firstValueFrom(this.client.send(pattern, payload).pipe(timeout(ms)));
  }
}

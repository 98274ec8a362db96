import { ClientRedis, ServerRedis } from "@nestjs/microservices";
import type { Config } from "@worldrouter/config";
import { redisOptions } from "./redis.js";

/**
 * The @nestjs/microservices Redis transport with every channel prefixed by REDIS_NAMESPACE, so several
 * deployments or test runs can share one Redis (pub/sub channels are global, not per database).
 */
export class NamespacedRedisServer extends ServerRedis {
  constructor(
    private readonly prefix: string,
    options: TransportOptions,
  ) {
    super(options);
  }
  override getRequestPattern(pattern: string): string {
    return `${this.prefix}${pattern}`;
  }
  override getReplyPattern(pattern: string): string {
    // Called with the concrete (already prefixed) request channel.
    return `${pattern.startsWith(this.prefix) ? pattern : this.prefix + pattern}.reply`;
  }
  override getHandlerByPattern(pattern: string) {
    return super.getHandlerByPattern(pattern.startsWith(this.prefix) ? pattern.slice(this.prefix.length) : pattern);
  }
}

export class NamespacedRedisClient extends ClientRedis {
  constructor(
    private readonly prefix: string,
    options: TransportOptions,
  ) {
    super(options);
  }
  override getRequestPattern(pattern: string): string {
    return `${this.prefix}${pattern}`;
  }
  override getReplyPattern(pattern: string): string {
    return `${this.prefix}${pattern}.reply`;
  }
}

const rpcPrefix = (config: Config) => `${config.redis.namespace}:rpc:`;
type TransportOptions = ConstructorParameters<typeof ClientRedis>[0];
const transportOptions = (config: Config): TransportOptions => ({
  ...redisOptions(config.redis.url),
  retryAttempts: 1_000_000,
  retryDelay: 500,
});

export const createRpcServer = (config: Config) => new NamespacedRedisServer(rpcPrefix(config), transportOptions(config));
export const createRpcClient = (config: Config) => new NamespacedRedisClient(rpcPrefix(config), transportOptions(config));

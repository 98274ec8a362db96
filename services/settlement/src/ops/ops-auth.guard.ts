import { createHash, timingSafeEqual } from "node:crypto";
import { Inject, Injectable, type CanActivate, type ExecutionContext } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CONFIG } from "@worldrouter/runtime";
import type { FastifyRequest } from "fastify";
import { UnauthorizedError } from "./ops-problem.js";

/**
 * Bearer OPS_TOKEN on every ops API route. Both sides are hashed first so the comparison takes the same time whatever
 * the length or content of the presented token.
 */
@Injectable()
export class OpsAuthGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(CONFIG) config: Config) {
    this.expected = digest(config.ops.token);
  }

  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const presented = /^Bearer (\S+)$/i.exec(header ?? "")?.[1];
    if (!presented) throw new UnauthorizedError("the ops API needs `Authorization: Bearer <OPS_TOKEN>`");
    if (!timingSafeEqual(digest(presented), this.expected)) throw new UnauthorizedError("the ops token is not valid");
    return true;
  }
}

const digest = (value: string) => createHash("sha256").update(value).digest();

import type { LoggerService } from "@nestjs/common";
import { pino, type Logger } from "pino";

export type { Logger };

/** JSON logs, one logger per service; secrets are redacted by key wherever they appear. */
export function createLogger(service: string, level = "info"): Logger {
  return pino({
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        "*.authorization",
        "*.Authorization",
        "*.privateKey",
        "*.apiKey",
        "*.secretKey",
        "headers.authorization",
        "req.headers.authorization",
      ],
      censor: "[redacted]",
    },
  });
}

/** Routes NestJS's own framework logs into pino. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}

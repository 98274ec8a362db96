export * from "./tokens.js";
export * from "./redis.js";
export * from "./core.module.js";
export * from "./queues.module.js";
export * from "./job-handlers.js";
export * from "./rpc-transport.js";
export * from "./bootstrap.js";
export * from "./readiness.js";

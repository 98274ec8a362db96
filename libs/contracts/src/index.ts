export * from "./primitives.js";
export * from "./jobs.js";
export * from "./queues.js";
export * from "./rpc.js";
export * from "./stream.js";
export * from "./reply-entry.js";
export * from "./inference-jobs.js";
export * from "./money-events.js";

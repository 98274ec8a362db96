export * from "./logger.js";
export * from "./metrics.js";
export * from "./health-server.js";
export * from "./request-id.js";

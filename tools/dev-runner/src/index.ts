export * from "./system.js";
export * from "./services.js";

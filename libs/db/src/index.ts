export * from "./client.js";
export * from "./ledger.js";
export * from "./database.module.js";

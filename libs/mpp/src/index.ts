export * from "./charge-challenge.js";
export * from "./problems.js";
export * from "./receipt.js";
export * from "./attribution.js";
export * from "./session-challenge.js";

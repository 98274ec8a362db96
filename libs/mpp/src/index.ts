export * from "./charge-challenge.js";
export * from "./problems.js";
export * from "./receipt.js";
export * from "./attribution.js";

export * from "./anvil.js";
export * from "./dev-accounts.js";
export * from "./world.js";
export * from "./escrow-open-priming.js";

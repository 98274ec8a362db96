export * from "./reconcile-charges.js";

export * from "./config.js";
export { ENV, DEV_MPP_SECRET, DEV_OPS_TOKEN, type EnvName } from "./env.js";
export * from "./world.js";

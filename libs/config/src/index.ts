export * from "./config.js";
export { ENV, DEV_MPP_SECRET, type EnvName } from "./env.js";
export * from "./world.js";

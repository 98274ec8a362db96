export { CONTROLS, DEFAULT_CONTROLS, type FakeControls, type FakeFault } from "./controls.js";
export { startFakeUpstream, type FakeUpstream, type FakeUpstreamOptions } from "./server.js";
export type { FakeUpstreamStats } from "./stats.js";

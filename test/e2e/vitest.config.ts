import { mergeConfig } from "vitest/config";
import { projectConfig } from "../../vitest.shared.js";

// Each file starts a whole system (chain, upstream, four services): run them one at a time so a 2-core CI
// machine is not oversubscribed into timeouts.
export default mergeConfig(projectConfig(import.meta.url, { infra: true }), { test: { fileParallelism: false, testTimeout: 120_000 } });

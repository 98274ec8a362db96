import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import swc from "unplugin-swc";
import { defineConfig } from "vitest/config";

/**
 * One vitest config for every workspace. SWC compiles tests because NestJS dependency injection needs
 * `emitDecoratorMetadata`, which esbuild/oxc do not emit. The `@worldrouter/source` export condition makes workspace libs
 * resolve to their TypeScript sources, so tests never run against a stale build. `infra` gives the project a
 * throwaway Postgres database and Redis namespace (test/global-setup.ts).
 */
const SOURCE_CONDITION = "@worldrouter/source";

export function projectConfig(configUrl: string, options: { infra?: boolean } = {}) {
  const root = dirname(fileURLToPath(configUrl));
  return defineConfig({
    root,
    plugins: [
      swc.vite({
        jsc: {
          target: "es2022",
          parser: { syntax: "typescript", decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
        },
      }),
    ],
    resolve: { conditions: [SOURCE_CONDITION] },
    ssr: { resolve: { conditions: [SOURCE_CONDITION], externalConditions: [SOURCE_CONDITION] } },
    test: {
      include: ["src/**/*.test.ts"],
      globalSetup: options.infra ? [fileURLToPath(new URL("./test/global-setup.ts", import.meta.url))] : [],
      pool: "forks",
      testTimeout: 30_000,
      hookTimeout: 60_000,
      reporters: ["default"],
    },
  });
}

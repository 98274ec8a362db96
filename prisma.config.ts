import { fileURLToPath } from "node:url";
import { defineConfig } from "prisma/config";

// generate/validate/format first try to download the schema-engine; naming any existing file skips that.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(new URL("./prisma/scripts/no-schema-engine.sh", import.meta.url));

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "" }, // not env(): that throws when unset (postinstall)
});

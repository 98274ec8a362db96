import { Global, Inject, Module, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { createPrismaClient, PrismaClient } from "@worldrouter/db";
import { CONFIG } from "@worldrouter/runtime";

/** The Prisma client (Postgres ledger), one pool per process, closed on shutdown. */
@Global()
@Module({
  providers: [{ provide: PrismaClient, inject: [CONFIG], useFactory: (config: Config) => createPrismaClient(config.databaseUrl) }],
  exports: [PrismaClient],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}
  async onApplicationShutdown() {
    await this.db.$disconnect();
  }
}

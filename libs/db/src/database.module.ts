import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from "@nestjs/common";
import { createPrismaClient, PrismaClient } from "./client.js";

/** The Prisma client (Postgres ledger), one pool per process, closed on shutdown. */
@Global()
@Module({})
export class DatabaseModule implements OnApplicationShutdown {
  static forRoot(databaseUrl: string): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [{ provide: PrismaClient, useFactory: () => createPrismaClient(databaseUrl) }],
      exports: [PrismaClient],
    };
  }

  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}
  async onApplicationShutdown() {
    await this.db.$disconnect();
  }
}

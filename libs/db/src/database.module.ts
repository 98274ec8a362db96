import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from "@nestjs/common";
import { createPgPool, createPrismaClient, PgPool, type PoolOptions, PrismaClient } from "./client.js";

/** One Postgres pool per process: the Prisma client and the raw `PgPool` share it; closed on shutdown. */
@Global()
@Module({})
export class DatabaseModule implements OnApplicationShutdown {
  static forRoot(databaseUrl: string, timeouts: Pick<PoolOptions, "connectTimeoutMs" | "statementTimeoutMs">): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [
        { provide: PgPool, useFactory: () => createPgPool(databaseUrl, timeouts) },
        { provide: PrismaClient, useFactory: (pool: PgPool) => createPrismaClient(pool), inject: [PgPool] },
      ],
      exports: [PrismaClient, PgPool],
    };
  }

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(PgPool) private readonly pool: PgPool,
  ) {}

  async onApplicationShutdown() {
    await this.db.$disconnect();
    await this.pool.end();
  }
}

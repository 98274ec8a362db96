import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { createPgPool, type PgPool } from "@worldrouter/db";
import { CONFIG } from "@worldrouter/runtime";

/**
 * The ops API's connection to Postgres as the read-only role `worldrouter_ops_reader`, which may read the `reporting`
 * views and nothing else: a bug or an injection in a report cannot write the ledger or read a table it was not given.
 */
@Injectable()
export class OpsReader implements OnApplicationShutdown {
  readonly pool: PgPool;

  constructor(@Inject(CONFIG) config: Config) {
    this.pool = createPgPool(config.ops.readerDatabaseUrl, { poolSize: 4, ...config.database });
  }

  query<R extends object>(text: string, values: unknown[] = []): Promise<{ rows: R[] }> {
    return this.pool.query<R>(text, values);
  }

  async onApplicationShutdown() {
    await this.pool.end();
  }
}

export function migrate(
  databaseUrl: string,
  log?: (line: string) => void,
  options?: { opsReaderPassword?: string },
): Promise<{ total: number; applied: number }>;
export function ensureDatabase(databaseUrl: string): Promise<void>;

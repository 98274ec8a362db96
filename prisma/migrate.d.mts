export function migrate(databaseUrl: string, log?: (line: string) => void): Promise<{ total: number; applied: number }>;
export function ensureDatabase(databaseUrl: string): Promise<void>;

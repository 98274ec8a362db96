/** Injection tokens for the process-wide singletons every service has. */
export const CONFIG = Symbol("Config");
export const LOGGER = Symbol("Logger");
export const METRICS = Symbol("MetricsRegistry");
export const SERVICE_NAME = Symbol("ServiceName");

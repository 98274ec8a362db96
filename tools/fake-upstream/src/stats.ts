/** Counters tests assert on: what the fake was asked, what it answered, what was cut short and by whom. */
export interface FakeUpstreamStats {
  readonly requests: { chatCompletions: number; messages: number; models: number; other: number };
  /** Responses sent in full, by status class. */
  readonly responses: { ok: number; clientError: number; serverError: number };
  /** 429 / 500 / overloaded responses and injected disconnects. */
  faultsInjected: number;
  /** Connections the fake destroyed on purpose (fault=disconnect, disconnect-after). */
  disconnectsInjected: number;
  /** Connections the client closed before the response ended. */
  clientAborts: number;
  /** Requests being answered now. */
  inFlight: number;
}

export type Endpoint = keyof FakeUpstreamStats["requests"];

export class StatsRecorder {
  readonly stats: FakeUpstreamStats = emptyStats();

  request(endpoint: Endpoint): void {
    this.stats.requests[endpoint]++;
  }

  opened(): void {
    this.stats.inFlight++;
  }

  completed(status: number): void {
    this.stats.inFlight--;
    if (status < 400) this.stats.responses.ok++;
    else if (status < 500) this.stats.responses.clientError++;
    else this.stats.responses.serverError++;
  }

  faultInjected(): void {
    this.stats.faultsInjected++;
  }

  disconnectInjected(): void {
    this.stats.inFlight--;
    this.stats.disconnectsInjected++;
  }

  clientAborted(): void {
    this.stats.inFlight--;
    this.stats.clientAborts++;
  }

  reset(): void {
    const inFlight = this.stats.inFlight;
    Object.assign(this.stats, emptyStats(), { inFlight });
  }
}

function emptyStats(): FakeUpstreamStats {
  return {
    requests: { chatCompletions: 0, messages: 0, models: 0, other: 0 },
    responses: { ok: 0, clientError: 0, serverError: 0 },
    faultsInjected: 0,
    disconnectsInjected: 0,
    clientAborts: 0,
    inFlight: 0,
  };
}

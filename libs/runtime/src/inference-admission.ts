import type { Config } from "@worldrouter/config";
import { ADMISSION_VERDICTS, type AdmissionVerdict, inferenceAdmissionKey } from "@worldrouter/contracts";
import type { Redis } from "ioredis";

/** Why a worker does not run a job: any verdict but its own `admitted`. */
export type DropReason = Exclude<AdmissionVerdict, "admitted">;

/**
 * The one-verdict-per-request record (`inferenceAdmissionKey`) shared by gateways, workers and settlement. The
 * first `decide` for a request wins (`SET NX GET`, one atomic command); every later one learns that verdict. So a
 * worker starting a job and its gateway giving up on it (deadline, client gone) or the sweep refunding its payment
 * can never both happen: exactly one of "served" and "refunded without running".
 */
export class InferenceAdmissions {
  private readonly ttlMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly namespace: string,
    config: Pick<Config, "settlement">,
  ) {
    // Beyond any job's deadline and the sweep window: by then the request's payment is settled either way.
    this.ttlMs = config.settlement.orphanedPaymentMinutes * 60_000;
  }

  /** Records `verdict` unless another was recorded first; returns the verdict in force and whether this call set it. */
  async decide(requestId: string, verdict: AdmissionVerdict): Promise<{ verdict: AdmissionVerdict; decided: boolean }> {
    const previous = (await this.redis.call(
      "SET",
      inferenceAdmissionKey(this.namespace, requestId),
      verdict,
      "PX",
      String(this.ttlMs),
      "NX",
      "GET",
    )) as string | null;
    if (previous === null) return { verdict, decided: true };
    // Anything unexpected in the key reads as "do not run": a job is never served on a doubtful verdict.
    return {
      verdict: (ADMISSION_VERDICTS as readonly string[]).includes(previous) ? (previous as AdmissionVerdict) : "swept",
      decided: false,
    };
  }

  /**
   * A worker's admission of a job it just read: `run`, or why it must be dropped. Past its deadline a job is
   * dropped even if nobody recorded a verdict (its gateway may be gone): its client already got a 504. A job some
   * worker admitted already (a duplicate delivery) is `duplicate`: neither run nor reported again.
   */
  async admit(job: { requestId: string; deadline: number }, now = Date.now()): Promise<"run" | DropReason | "duplicate"> {
    const { verdict, decided } = await this.decide(job.requestId, now >= job.deadline ? "expired" : "admitted");
    if (verdict === "admitted") return decided ? "run" : "duplicate";
    return verdict;
  }
}

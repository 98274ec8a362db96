/**
 * CPU of each step of the gateway's 402 path, measured in-process on the BUILT gateway classes (no HTTP, no
 * Redis: the 402 path touches neither). ChargeCompletion is constructed with the real config and QuoteRequest;
 * its verifier client and inference relay are left out because a request without a credential never reaches
 * them (a call would throw, so the measurement could not silently include a stub).
 */
import { join } from "node:path";
import { Challenge } from "mppx";
import { ROOT, round } from "./common.mjs";

const gatewayDist = (path) => import(join(ROOT, "services/gateway/dist", path));

function timePerCall(fn, { minMs = 300, batch = 200 } = {}) {
  for (let i = 0; i < batch * 5; i++) fn(i); // warm-up / JIT
  const runs = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < minMs / 5) {
      for (let i = 0; i < batch; i++) fn(n + i);
      n += batch;
    }
    runs.push(((performance.now() - start) * 1000) / n);
  }
  runs.sort((a, b) => a - b);
  return round(runs[2], 2); // median of 5
}

async function timePerCallAsync(fn, { minMs = 300 } = {}) {
  for (let i = 0; i < 1000; i++) await fn(i);
  const runs = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < minMs / 5) await fn(n++);
    runs.push(((performance.now() - start) * 1000) / n);
  }
  runs.sort((a, b) => a - b);
  return round(runs[2], 2);
}

/**
 * Builds a Nest provider the way Nest's injector would, from its `@Inject(token)` metadata, so the bench keeps
 * working when constructor parameters are added or reordered.
 */
function construct(Class, provide) {
  const injected = Reflect.getMetadata("self:paramtypes", Class) ?? [];
  const args = [];
  for (const { index, param } of injected) {
    if (!provide.has(param))
      throw new Error(`${Class.name}: no value for constructor parameter ${index} (${String(param?.name ?? param)})`);
    args[index] = provide.get(param);
  }
  return new Class(...args);
}

export async function measureGatewaySteps(config) {
  const mpp = await import("@worldrouter/mpp");
  const { parseChatCompletionRequest } = await gatewayDist("chat/chat-request.js");
  const { QuoteRequest } = await gatewayDist("chat/quote-request.js");
  const { ChargeCompletion } = await gatewayDist("chat/charge-completion.use-case.js");
  const { ProblemException } = await gatewayDist("http/problem.js");
  const { MODEL_REGISTRY, modelRegistryProvider } = await gatewayDist("pricing/model-registry.provider.js");
  const { PaymentVerifierClient } = await gatewayDist("payment-verifier.client.js");
  const { InferenceRelay } = await gatewayDist("inference/inference-relay.js");
  const { CONFIG, METRICS, LOGGER } = await import("@worldrouter/runtime");
  const { createMetricsRegistry, createLogger } = await import("@worldrouter/observability");

  const notReached = new Proxy(
    {},
    {
      get: () => {
        throw new Error("the 402 path must not reach the verifier or the relay");
      },
    },
  );
  const provide = new Map([
    [CONFIG, config],
    [METRICS, createMetricsRegistry("gateway-bench")],
    [LOGGER, createLogger("gateway-bench", "warn")],
    [MODEL_REGISTRY, modelRegistryProvider.useFactory(config)],
    [PaymentVerifierClient, notReached],
    [InferenceRelay, notReached],
  ]);
  const quoter = construct(QuoteRequest, provide);
  provide.set(QuoteRequest, quoter);
  const charge = construct(ChargeCompletion, provide);

  const bodies = Array.from({ length: 1024 }, (_, i) =>
    Buffer.from(
      JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `Summarise item ${i} in one sentence, please.` }] }),
    ),
  );
  const parsed = bodies.map((b) => parseChatCompletionRequest(JSON.parse(b.toString("utf8"))).request);
  const quote = await quoter.quote(parsed[0]);
  const digest = mpp.bodyDigest(bodies[0]);
  const terms = {
    amount: quote.amount,
    currency: config.chain.token,
    recipient: config.chain.payee,
    chainId: config.chain.chainId,
    feePayer: true,
  };
  const description = `$0.000012 in USDC.e for ${quote.promptTokens} prompt tokens of gpt-4o-mini`;
  const expiresAt = () => new Date(Date.now() + config.mpp.challengeTtlSeconds * 1000);
  const challengeInput = () => ({
    secretKey: config.mpp.secretKey,
    realm: config.gateway.realm,
    terms,
    digest,
    expiresAt: expiresAt(),
    description,
  });

  const perCallUs = {};
  perCallUs["JSON.parse body"] = timePerCall((i) => JSON.parse(bodies[i & 1023].toString("utf8")));
  perCallUs["validate (zod parseChatCompletionRequest)"] = timePerCall((i) =>
    parseChatCompletionRequest(JSON.parse(bodies[i & 1023].toString("utf8"))),
  );
  perCallUs["quote (model, token count, price)"] = await timePerCallAsync((i) => quoter.quote(parsed[i & 1023]));
  perCallUs["body digest (sha-256)"] = timePerCall((i) => mpp.bodyDigest(bodies[i & 1023]));
  perCallUs["challenge: mppx Challenge.from + serialize"] = timePerCall(() =>
    Challenge.serialize(
      Challenge.from({
        secretKey: config.mpp.secretKey,
        realm: config.gateway.realm,
        method: "tempo",
        intent: "charge",
        request: mpp.chargeRequest(terms),
        digest,
        expires: expiresAt().toISOString(),
        description,
      }),
    ),
  );
  perCallUs["challenge: libs/mpp create + serialize"] = timePerCall(() =>
    mpp.serializeChallenge(mpp.createChargeChallenge(challengeInput())),
  );
  if (typeof mpp.ChargeChallenger === "function") {
    const challenger = new mpp.ChargeChallenger({
      secretKey: config.mpp.secretKey,
      realm: config.gateway.realm,
      currency: config.chain.token,
      recipient: config.chain.payee,
      chainId: config.chain.chainId,
      feePayer: true,
    });
    perCallUs["challenge: libs/mpp ChargeChallenger header"] = timePerCall(
      () => challenger.challenge({ amount: quote.amount, digest, expiresAt: expiresAt(), description }).header,
    );
  }
  perCallUs["402 use case (ChargeCompletion → ProblemException + body)"] = await timePerCallAsync(async (i) => {
    try {
      await charge.execute({
        requestId: `r${i}`,
        request: parsed[i & 1023],
        rawBody: bodies[i & 1023],
        authorization: undefined,
        signal: undefined,
      });
    } catch (err) {
      if (!(err instanceof ProblemException)) throw err;
      JSON.stringify(err.body());
    }
  });
  return { perCallUs, note: "median of 5 timed batches after warm-up; bodies are 1024 distinct small prompts" };
}

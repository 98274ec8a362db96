import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, getContract, hashTypedData, http, keccak256, stringToHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Addresses, Channel } from "viem/tempo";
import { Session } from "mppx/tempo";
import { Mppx, tempo as serverTempo } from "mppx/server";
import { tempo as clientTempo } from "mppx/client";
import { channelEscrowAbi, createTempoClients, tempoChain } from "@worldrouter/chain";
import { withEscrowOpenPriming } from "./escrow-open-priming.js";
import {
  channelState,
  openChannel,
  signVoucher,
  startLocalWorld,
  tokenBalance,
  writeEscrow,
  type LocalWorld,
} from "./test-support/local-world.js";

// The stand-in must be indistinguishable from the TIP-1034 precompile for mppx: same channel ids, same voucher
// digest, and an unmodified mppx session client + server running a paid session against it.

let local: LocalWorld;
beforeAll(async () => {
  local = await startLocalWorld({ payerCount: 2 });
});
afterAll(() => local?.stop());

const escrowContract = () => getContract({ address: local.world.escrow, abi: channelEscrowAbi, client: local.clients.publicClient });

describe("mppx primitives against the stand-in", () => {
  it("computes the same channel id as mppx for the same descriptor", async () => {
    const descriptor = {
      payer: local.payers[0]!.address,
      payee: local.payee.address,
      operator: local.payers[1]!.address,
      token: local.world.token.address,
      salt: keccak256(stringToHex("salt")),
      authorizedSigner: local.payers[1]!.address,
      expiringNonceHash: keccak256(stringToHex("nonce hash")),
    };
    const { payer, payee, operator, token, salt, authorizedSigner, expiringNonceHash } = descriptor;
    const onChain = await escrowContract().read.computeChannelId([
      payer,
      payee,
      operator,
      token,
      salt,
      authorizedSigner,
      expiringNonceHash,
    ]);
    expect(onChain).toBe(Session.Precompile.Channel.computeId({ ...descriptor, chainId: local.world.chainId, escrow: local.world.escrow }));
  });

  it("uses mppx's EIP-712 voucher domain and digest", async () => {
    const channelId = keccak256(stringToHex("channel"));
    const cumulativeAmount = 123_456_789n;
    const mppxDigest = hashTypedData({
      domain: Session.Precompile.Voucher.getVoucherDomain(local.world.escrow, local.world.chainId),
      types: Session.Precompile.Voucher.voucherTypes,
      primaryType: "Voucher",
      message: { channelId, cumulativeAmount },
    });
    expect(await escrowContract().read.getVoucherDigest([channelId, cumulativeAmount])).toBe(mppxDigest);
    // At the canonical address mppx signs via ox's precompile digest: it must agree too.
    expect(mppxDigest).toBe(Channel.getVoucherSignPayload({ chainId: local.world.chainId, channelId, cumulativeAmount }));
    expect(await escrowContract().read.domainSeparator()).toBe(Channel.domainSeparator({ chainId: local.world.chainId }));
    expect(await escrowContract().read.VOUCHER_TYPEHASH()).toBe(Channel.voucherTypehash);
    expect(await escrowContract().read.CLOSE_GRACE_PERIOD()).toBe(Channel.closeGracePeriod);
  });

  it("settles a voucher signed by mppx, which mppx's own verifier also accepts", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 500_000n });
    const signature = await signVoucher(local, payer, channelId, 200_000n);
    expect(
      Session.Precompile.Voucher.verifyVoucher(
        local.world.escrow,
        local.world.chainId,
        { channelId, cumulativeAmount: 200_000n, signature },
        payer.address,
      ),
    ).toBe(true);
    await writeEscrow(local, local.payee, { functionName: "settle", args: [descriptor, 200_000n, signature] });
    expect(await channelState(local, channelId)).toMatchObject({ settled: 200_000n });
  });
});

/** An mppx session server on a free port; `primeOpens: false` leaves out the dev bridge, `sponsorFees` adds our fee payer. */
async function startMppxSessionServer(options: {
  primeOpens: boolean;
  sponsorFees?: boolean;
}): Promise<{ url: string; close(): Promise<void> }> {
  const transport = http(local.anvil.rpcUrl);
  // The server broadcasts the client's signed open tx; the priming transport is the dev bridge that lets the
  // stand-in see that tx's expiringNonceHash, exactly where a dev-mode gateway would use it.
  const serverClient = createPublicClient({
    chain: tempoChain({ rpcUrl: local.anvil.rpcUrl, chainId: local.world.chainId, feeToken: local.world.token.address }),
    transport: options.primeOpens ? withEscrowOpenPriming(transport) : transport,
  });
  const mppx = Mppx.create({
    methods: [
      serverTempo.session({
        account: local.payee,
        currency: local.world.token.address,
        getClient: () => serverClient,
        // The payee pays its close fee in pathUSD, so its USDC.e balance shows exactly what it earned.
        feeToken: Addresses.pathUsd,
        ...(options.sponsorFees ? { feePayer: privateKeyToAccount(local.world.feePayer.privateKey) } : {}),
      }),
    ],
    secretKey: "local-world-interop-test-secret-key-0123456789",
    realm: "localhost",
  });
  const paidRoute = Mppx.toNodeListener(mppx.session({ amount: "0.01", unitType: "request", suggestedDeposit: "0.5" }));
  const server: Server = createServer(async (req, res) => {
    const result = await paidRoute(req, res);
    if (result.status === 402) return;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ ok: true }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/paid`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function sessionManagerFor(payer: (typeof local.payers)[number]) {
  const payerClients = createTempoClients({
    rpcUrl: local.anvil.rpcUrl,
    chainId: local.world.chainId,
    feeToken: local.world.token.address,
  });
  return clientTempo.session.manager({ account: payer, getClient: () => payerClients.publicClient, maxDeposit: "1" });
}

describe("unmodified mppx session client and server", () => {
  it("opens a channel, pays per request with vouchers and closes on chain", async () => {
    const server = await startMppxSessionServer({ primeOpens: true });
    try {
      const session = sessionManagerFor(local.payers[1]!);
      const payeeBefore = await tokenBalance(local, local.payee.address);

      const first = await session.fetch(server.url);
      const second = await session.fetch(server.url);
      expect([first.status, second.status]).toEqual([200, 200]);
      const channelId = session.channelId!;
      expect(second.receipt?.reference).toBe(channelId);
      expect(await channelState(local, channelId)).toMatchObject({ deposit: 500_000n, settled: 0n });

      await session.close();
      expect(await channelState(local, channelId)).toEqual({ settled: 0n, deposit: 0n, closeRequestedAt: 0 });
      expect(await tokenBalance(local, local.payee.address)).toBe(payeeBefore + 20_000n);
    } finally {
      await server.close();
    }
  });

  it("works with a fee payer co-signing the open: the payer spends exactly what it was charged", async () => {
    const server = await startMppxSessionServer({ primeOpens: true, sponsorFees: true });
    try {
      const payer = local.payers[0]!;
      const session = sessionManagerFor(payer);
      const payerBefore = await tokenBalance(local, payer.address);

      expect((await session.fetch(server.url)).status).toBe(200);
      expect((await session.fetch(server.url)).status).toBe(200);
      expect(await channelState(local, session.channelId!)).toMatchObject({ deposit: 500_000n });
      await session.close();

      expect(await tokenBalance(local, payer.address)).toBe(payerBefore - 20_000n);
    } finally {
      await server.close();
    }
  });

  it("fails to open without the dev bridge: the stand-in cannot see the open tx's nonce hash", async () => {
    const server = await startMppxSessionServer({ primeOpens: false });
    try {
      const session = sessionManagerFor(local.payers[1]!);
      const response = await session.fetch(server.url);
      expect(response.status).toBe(402);
      expect(await response.text()).toContain("expected one ChannelOpened event for credential channelId");
    } finally {
      await server.close();
    }
  });
});

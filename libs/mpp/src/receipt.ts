import { Receipt } from "mppx";

/** `Payment-Receipt` header value: base64url JSON {method, reference, status, timestamp}. */
export function serializeChargeReceipt(receipt: { reference: string; timestamp: Date }): string {
  return Receipt.serialize(
    Receipt.from({ method: "tempo", reference: receipt.reference, status: "success", timestamp: receipt.timestamp.toISOString() }),
  );
}

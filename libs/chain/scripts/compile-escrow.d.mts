import type { Abi, Hex } from "viem";

export declare const escrowSourcePath: string;
export declare const escrowArtifactPath: string;
export declare function compileEscrow(): { compilerVersion: string; abi: Abi; deployedBytecode: Hex };
export declare function renderEscrowArtifactModule(compiled: ReturnType<typeof compileEscrow>): string;

import type { World } from "./env.js";
export interface FuzzReport { cases: number; accepted: number; rejected: number; clientSide: number; concurrentRounds: number; crashes: number; hangs: number; wrongCodes: number; stateChanges: number; codes: Record<string, number>; failures: string[] }
export async function runFuzz(_world: World, _o: { cases: number; seed: number; log: (l: string) => void }): Promise<FuzzReport> {
  return { cases: 0, accepted: 0, rejected: 0, clientSide: 0, concurrentRounds: 0, crashes: 0, hangs: 0, wrongCodes: 0, stateChanges: 0, codes: {}, failures: [] };
}

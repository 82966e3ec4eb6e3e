import * as gen from "../../api/gen/cri/v1/api.js";

/** What every generated message type offers. */
export interface MessageType<T = unknown> {
  fromPartial(object: unknown): T;
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  toJSON(message: T): unknown;
  fromJSON(object: unknown): T;
}

const EXCEPTIONS: Record<string, { request: string; response: string }> = {
  GetContainerEvents: { request: "GetEventsRequest", response: "ContainerEventResponse" },
};

/** The request and response message types of a CRI method (by its proto name, e.g. "ListContainers"). */
export function messageTypesOf(method: string): { request: MessageType; response: MessageType } {
  const names = EXCEPTIONS[method] ?? { request: `${method}Request`, response: `${method}Response` };
  const table = gen as unknown as Record<string, MessageType | undefined>;
  const request = table[names.request];
  const response = table[names.response];
  if (!request?.fromPartial || !response?.fromPartial) throw new Error(`no generated message types for CRI method ${method}`);
  return { request, response };
}

export function methodName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

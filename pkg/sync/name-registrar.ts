import { AlreadyExistsError } from "../errdefs/index.js";

/**
 * Reserves names (pod and container names) for their owner ids. Reserving is
 * synchronous, so no await can sit between the check and the set.
 */
export class NameRegistrar {
  readonly #byName = new Map<string, string>();

  constructor(private readonly what: string) {}

  reserve(name: string, owner: string): void {
    const holder = this.#byName.get(name);
    if (holder !== undefined && holder !== owner) {
      throw new AlreadyExistsError(`${this.what} name "${name}" is reserved for "${holder}"`);
    }
    this.#byName.set(name, owner);
  }

  release(name: string, owner?: string): void {
    if (owner === undefined || this.#byName.get(name) === owner) this.#byName.delete(name);
  }

  releaseOwner(owner: string): void {
    for (const [name, holder] of this.#byName) if (holder === owner) this.#byName.delete(name);
  }

  holder(name: string): string | undefined {
    return this.#byName.get(name);
  }
}

// The narrow interface every part uses; SQLite implements it now, PostgreSQL may later.
// Methods are async although SQLite answers synchronously, so a networked backend needs no
// change in any caller.

export interface Store {
  /** Resolves when the store can answer a query; rejects with the reason otherwise. */
  health(): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  override name = 'StoreError';
}

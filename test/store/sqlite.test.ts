// The store contract on SQLite: a file in a temp folder per database.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { BrokerStore } from '../../src/store/store.ts';
import { storeContract } from './contract.ts';

const KEY = Buffer.alloc(32, 9);

storeContract({
  name: 'SQLite',
  async database() {
    const dir = mkdtempSync(join(tmpdir(), 'broker-contract-'));
    const path = join(dir, 'b.db');
    const stores: BrokerStore[] = [];
    let raw: DatabaseSync | undefined;
    return {
      async open(o = {}) {
        const store = new SqliteStore({ path, secretKey: o.secretKey ?? KEY, previousKeys: o.previousKeys });
        stores.push(store);
        return store;
      },
      async raw(sql, params = []) {
        raw ??= new DatabaseSync(path, { timeout: 5000 });
        // $1, $2… (PostgreSQL's placeholders) are ?1, ?2… here.
        return raw.prepare(sql.replace(/\$(\d+)/g, '?$1')).all(...(params as SQLInputValue[])) as Record<
          string,
          unknown
        >[];
      },
      async close() {
        for (const s of stores) await s.close();
        raw?.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});

import { join } from 'node:path';

export const STANDIN = join(import.meta.dirname, '..', '..', 'emulator', 'forgejo-mcp', 'main.ts');

/** BROKER_CHILD_COMMAND running the forgejo-mcp stand-in with this Node (quoted: paths may have spaces). */
export const STANDIN_COMMAND = `"${process.execPath}" "${STANDIN}" --transport stdio`;

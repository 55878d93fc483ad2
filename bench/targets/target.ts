// A path from a load driver to a stdio MCP server: the server itself (the floor), or an HTTP
// front (a peer gateway or the broker) started around it.
import type { StdioServer } from '../servers.ts';

export type HttpRunning = {
  kind: 'http';
  /** the Streamable HTTP endpoint */
  url: string;
  /** sent with every request (Authorization for the broker) */
  headers: Record<string, string>;
  /** the front process whose CPU and memory are attributed to the path */
  pid: number;
  stop(): Promise<void>;
};

/** The floor has no front: each driver spawns the server and speaks stdio to it. */
export type StdioRunning = { kind: 'stdio'; server: StdioServer; stop(): Promise<void> };

export type Running = HttpRunning | StdioRunning;

export type Target = {
  name: string;
  label: string;
  start(server: StdioServer): Promise<Running>;
};

/** Thrown when a target cannot run on this checkout: the run reports the reason and goes on. */
export class TargetUnavailable extends Error {}

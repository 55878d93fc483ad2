import type { ChildChannel } from '../bridge/bridge.ts';
import type { Child } from '../supervisor/supervisor.ts';

/** Adapts a supervised child to the bridge's view of it. */
export function channelOf(child: Child): ChildChannel {
  let onLine: (line: string) => void = () => {};
  let onOversize: (o: { bytes: number; head: string; tail: string }) => void = () => {};
  child.onStdout({
    line: (text) => onLine(text),
    oversize: (bytes, head, tail) => onOversize({ bytes, head, tail }),
  });
  return {
    send: (line) => child.write(`${line}\n`),
    onLine: (cb) => {
      onLine = cb;
    },
    onOversize: (cb) => {
      onOversize = cb;
    },
    exited: child.exited.then((x) => ({ code: x.code, signal: x.signal })),
  };
}

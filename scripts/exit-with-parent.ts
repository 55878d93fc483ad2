// Preloaded (`--import`) into the broker that `make demo` starts: the demo keeps the broker's stdin
// open and never writes to it, so end of input means the demo script is gone (even killed with
// SIGKILL, which it cannot forward). The broker then stops as on SIGTERM instead of living on alone.
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.on('error', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.resume();
// Not a reason to stay alive: the broker exits on its own terms once it has stopped.
(process.stdin as unknown as { unref?: () => void }).unref?.();

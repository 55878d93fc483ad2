/**
 * Splits a byte stream on '\n' while holding at most `maxLineBytes` of any one line: the rest of an
 * over-long line is counted and dropped, never buffered. This is what keeps a child that writes
 * megabytes without a newline from growing the broker's memory.
 *
 * Works on bytes, not strings, so a multi-byte character split across two chunks decodes whole.
 */
/** `tail` holds the last bytes of an over-long line (where a JSON-RPC id may sit), else it is empty. */
export type LineSink = (head: Buffer, totalBytes: number, truncated: boolean, tail: Buffer) => void;

/** How much of the end of a dropped line is kept. */
export const TAIL_BYTES = 256;

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

export class LineSplitter {
  readonly #max: number;
  readonly #sink: LineSink;
  // Pieces of the current line kept so far (copies: a subarray would pin the whole chunk).
  #parts: Buffer[] = [];
  #kept = 0;
  // Bytes of the current line seen so far, kept or dropped.
  #total = 0;
  // The last TAIL_BYTES of what was dropped from the current line.
  #tail: Buffer = Buffer.alloc(0);

  constructor(maxLineBytes: number, sink: LineSink) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
    }
    this.#max = maxLineBytes;
    this.#sink = sink;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl === -1) {
        this.#take(chunk.subarray(start), true);
        return;
      }
      this.#take(chunk.subarray(start, nl), false);
      this.#emit();
      start = nl + 1;
    }
  }

  /** The stream ended: a last line without its newline is still a line. */
  end(): void {
    if (this.#total > 0) this.#emit();
  }

  #take(piece: Buffer, mustCopy: boolean): void {
    this.#total += piece.length;
    const room = this.#max - this.#kept;
    if (piece.length === 0) return;
    const keep = room <= 0 ? piece.subarray(0, 0) : piece.length > room ? piece.subarray(0, room) : piece;
    if (keep.length > 0) {
      this.#parts.push(mustCopy ? Buffer.from(keep) : keep);
      this.#kept += keep.length;
    }
    if (keep.length < piece.length) {
      const dropped = piece.subarray(keep.length);
      const joined = dropped.length >= TAIL_BYTES ? dropped : Buffer.concat([this.#tail, dropped]);
      this.#tail = Buffer.from(joined.subarray(Math.max(0, joined.length - TAIL_BYTES)));
    }
  }

  #emit(): void {
    let head = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#kept);
    const total = this.#total;
    const truncated = total > this.#kept;
    const tail = this.#tail;
    this.#tail = Buffer.alloc(0);
    this.#parts = [];
    this.#kept = 0;
    this.#total = 0;
    // CRLF framing is tolerated: the '\r' belongs to the terminator, not the line.
    if (!truncated && head.length > 0 && head[head.length - 1] === CARRIAGE_RETURN) {
      head = head.subarray(0, head.length - 1);
    }
    this.#sink(head, total, truncated, tail);
  }
}

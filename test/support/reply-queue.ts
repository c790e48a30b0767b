import type { PendingReply, ReplyKind } from '../../lib/memcached/protocol/reply-parser.js';

/** A FIFO of commands, as a connection keeps them, recording how each ended (parser specs). */
export class QueueSink {
  readonly queue: PendingReply[] = [];
  readonly done: Array<{ reply: PendingReply; status?: string; refused?: string }> = [];

  ask(kind: ReplyKind, keys: string | readonly string[] = ''): PendingReply {
    const multi = typeof keys !== 'string';
    const reply: PendingReply = {
      kind,
      key: multi ? '' : keys,
      keys: multi ? keys : undefined,
      value: undefined,
      values: multi ? new Array<unknown>(keys.length).fill(undefined) : undefined,
      keyMismatches: 0,
      oversized: 0,
      stats: undefined,
    };
    this.queue.push(reply);
    return reply;
  }

  head(): PendingReply | undefined {
    return this.queue[0];
  }

  complete(status: string): void {
    this.done.push({ reply: this.queue.shift()!, status });
  }

  refuse(line: string): void {
    this.done.push({ reply: this.queue.shift()!, refused: line });
  }
}

import type { LoggerService } from '@nestjs/common';
import { DnsLookupError } from '../errors/discovery.errors.js';
import { MemberDiscovery } from './member-discovery.js';
import type { MemberDiscoveryOptions } from './member-discovery.js';
import { memberId } from './member.js';
import type { Member } from './member.js';
import type { Resolver, SrvAnswer } from './resolvers.js';

// Fixtures of the MemberDiscovery specs (member-discovery*.spec.ts): no I/O, answers set by the test.

type Answer<T> = T | Error | 'hang';

/** A resolver whose answers the test sets; lookups can be held on a gate to overlap calls. */
export class FakeResolver implements Resolver {
  readonly hosts = new Map<string, Answer<string[]>>();
  readonly srv = new Map<string, Answer<SrvAnswer[]>>();
  readonly calls: string[] = [];
  cancelled = 0;
  private gate?: Promise<void>;
  private openGate?: () => void;

  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  lookupHost(name: string): Promise<string[]> {
    return this.answer(`host ${name}`, this.hosts.get(name) ?? []);
  }

  resolveSrv(name: string): Promise<SrvAnswer[]> {
    return this.answer(`srv ${name}`, this.srv.get(name) ?? []);
  }

  cancel(): void {
    this.cancelled++;
  }

  private async answer<T>(call: string, answer: Answer<T>): Promise<T> {
    this.calls.push(call);
    if (this.gate) await this.gate;
    if (answer === 'hang') return new Promise<T>(() => undefined);
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

export class FakeLogger implements LoggerService {
  readonly lines: Array<[level: string, message: string]> = [];
  log(message: string): void {
    this.lines.push(['log', message]);
  }
  warn(message: string): void {
    this.lines.push(['warn', message]);
  }
  error(message: string): void {
    this.lines.push(['error', message]);
  }
  debug(message: string): void {
    this.lines.push(['debug', message]);
  }
  at(level: string): string[] {
    return this.lines.filter(([l]) => l === level).map(([, m]) => m);
  }
}

export const ids = (members: readonly Member[]) => members.map(memberId);
export const unreachable = () =>
  new DnsLookupError('mycache', 'ECONNREFUSED', 'DNS lookup of "mycache" failed (ECONNREFUSED)');

/** A fresh resolver and logger per test, and every discovery made with them, to stop after it. */
export class DiscoveryFixture {
  readonly resolver = new FakeResolver();
  readonly logger = new FakeLogger();
  private readonly made: MemberDiscovery[] = [];

  /** A discovery of 'mycache' through the fake resolver, no periodic refresh unless asked. */
  discovery(options: Partial<MemberDiscoveryOptions> = {}): MemberDiscovery {
    const d = new MemberDiscovery({
      host: 'mycache',
      resolver: this.resolver,
      logger: this.logger,
      refreshInterval: 0,
      ...options,
    });
    this.made.push(d);
    return d;
  }

  stop(): void {
    for (const d of this.made.splice(0)) d.stop();
    this.resolver.release();
  }
}

import { EventEmitter } from 'node:events';

type Listener<Args extends unknown[]> = (...args: Args) => void;
/** Any listener: what a plain `EventEmitter` accepts for a name it knows nothing about. */
type AnyListener = (...args: never[]) => void;

/** One listener method: typed for the declared events, as on a plain `EventEmitter` for others. */
interface ListenerMethod<Events extends Record<keyof Events, unknown[]>, This> {
  <E extends keyof Events>(event: E, listener: Listener<Events[E]>): This;
  (event: string | symbol, listener: AnyListener): This;
}

/**
 * The listener methods of an emitter of `Events`. Declared events get their argument types; any
 * other name still compiles as on a plain `EventEmitter`, so callers that pass a name held in a
 * string, or a listener typed more loosely, keep compiling (`EventEmitter<Events>` rejects both).
 */
export interface TypedEvents<Events extends Record<keyof Events, unknown[]>> {
  on: ListenerMethod<Events, this>;
  once: ListenerMethod<Events, this>;
  addListener: ListenerMethod<Events, this>;
  prependListener: ListenerMethod<Events, this>;
  prependOnceListener: ListenerMethod<Events, this>;
  off: ListenerMethod<Events, this>;
  removeListener: ListenerMethod<Events, this>;
  /** Declared events only, with their arguments: the emitter's own emits are checked. */
  emit<E extends keyof Events>(event: E, ...args: Events[E]): boolean;
}

type OtherMethods = Omit<EventEmitter, keyof TypedEvents<Record<never, unknown[]>>>;

/** `EventEmitter` (the same class at runtime) with the listener methods of `TypedEvents`. */
export const TypedEventEmitter = EventEmitter as unknown as new <
  Events extends Record<keyof Events, unknown[]>,
>() => TypedEvents<Events> & OtherMethods;

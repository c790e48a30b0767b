import { EventEmitter } from 'node:events';

type Listener<Args extends unknown[]> = (...args: Args) => void;
/** Any listener: what a plain `EventEmitter` accepts for a name it knows nothing about. */
type AnyListener = (...args: never[]) => void;

/**
 * The listener methods of an emitter of `Events`. Declared events get their argument types; any
 * other name still compiles as on a plain `EventEmitter`, so callers that pass a name held in a
 * string, or a listener typed more loosely, keep compiling (`EventEmitter<Events>` rejects both).
 */
export interface TypedEvents<Events extends Record<keyof Events, unknown[]>> {
  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this;
  on(event: string | symbol, listener: AnyListener): this;
  once<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this;
  once(event: string | symbol, listener: AnyListener): this;
  addListener<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this;
  addListener(event: string | symbol, listener: AnyListener): this;
  prependListener<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this;
  prependListener(event: string | symbol, listener: AnyListener): this;
  prependOnceListener<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this;
  prependOnceListener(event: string | symbol, listener: AnyListener): this;
  off<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this;
  off(event: string | symbol, listener: AnyListener): this;
  removeListener<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this;
  removeListener(event: string | symbol, listener: AnyListener): this;
  /** Declared events only, with their arguments: the emitter's own emits are checked. */
  emit<E extends keyof Events>(event: E, ...args: Events[E]): boolean;
}

type OtherMethods = Omit<EventEmitter, keyof TypedEvents<Record<never, unknown[]>>>;

/** `EventEmitter` (the same class at runtime) with the listener methods of `TypedEvents`. */
export const TypedEventEmitter = EventEmitter as unknown as new <
  Events extends Record<keyof Events, unknown[]>,
>() => TypedEvents<Events> & OtherMethods;

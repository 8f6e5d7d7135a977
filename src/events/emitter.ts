/**
 * A typed event emitter for hot paths: emitters ask {@link TypedEmitter.listening} (a plain field)
 * before they build an event object, so an event nobody listens to costs one boolean read and
 * allocates nothing. A throwing listener never breaks the emitter's own work: its error goes to
 * {@link TypedEmitter.listenerErrors}.
 */

/** A listener of events of type `E`. */
export type Listener<E> = (event: E) => void;

/** Called with what a listener threw, and the name of the event it was given. */
export type ListenerErrorHandler = (err: unknown, event: string) => void;

export class TypedEmitter<M extends object> {
  #listeners = new Map<keyof M, Listener<never>[]>();
  /** True while anyone listens to any event of this emitter: check it before building an event. */
  listening = false;
  /** Where a listener's error goes (default: a process warning). Listeners must not throw. */
  listenerErrors: ListenerErrorHandler = (err, event) =>
    process.emitWarning(`a listener of tasuki event "${event}" threw: ${String(err)}`, 'TasukiWarning');

  /** Calls `listener` with every event named `name` from now on. */
  on<K extends keyof M>(name: K, listener: Listener<M[K]>): this {
    const list = this.#listeners.get(name);
    // Copy on write: an emit in progress keeps iterating the list it started with.
    this.#listeners.set(name, list ? [...list, listener] : [listener]);
    this.listening = true;
    return this;
  }

  /** Calls `listener` with the next event named `name` only. */
  once<K extends keyof M>(name: K, listener: Listener<M[K]>): this {
    const wrapped: Listener<M[K]> = (event) => {
      this.off(name, wrapped);
      listener(event);
    };
    return this.on(name, wrapped);
  }

  /** Stops calling `listener` for `name`. */
  off<K extends keyof M>(name: K, listener: Listener<M[K]>): this {
    const list = this.#listeners.get(name);
    if (!list) return this;
    const rest = list.filter((l) => l !== listener);
    if (rest.length) this.#listeners.set(name, rest);
    else this.#listeners.delete(name);
    this.listening = this.#listeners.size > 0;
    return this;
  }

  /** How many listeners `name` has. */
  listenerCount(name: keyof M): number {
    return this.#listeners.get(name)?.length ?? 0;
  }

  /** Whether `name` has a listener (cheap: check it before building an event for `name` alone). */
  hasListeners(name: keyof M): boolean {
    return this.#listeners.has(name);
  }

  /** @internal Calls the listeners of `name` with `event`; a listener's error goes to {@link listenerErrors}. */
  emit<K extends keyof M>(name: K, event: M[K]): void {
    const list = this.#listeners.get(name) as Listener<M[K]>[] | undefined;
    if (!list) return;
    for (const listener of list) {
      try {
        listener(event);
      } catch (err) {
        this.listenerErrors(err, String(name));
      }
    }
  }
}

/**
 * A tiny typed event emitter for the browser-safe client (no `node:events`). Unlike Node's, an
 * 'error' event with no listener is dropped, not thrown: a page without an error handler keeps
 * running. A listener that throws does not stop the others (the error is rethrown asynchronously,
 * so it still reaches the console / `unhandledException`).
 */
export type EventMap = { [event: string]: unknown[] };

export class Emitter<Events extends EventMap> {
  /** Listeners by event; typed at `on`/`emit`, stored untyped. */
  private readonly listeners = new Map<keyof Events, Set<unknown>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  once<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): () => void {
    const off = this.on(event, (...args: Events[K]) => {
      off();
      listener(...args);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): void {
    this.listeners.get(event)?.delete(listener);
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Calls each listener in the order added; returns whether there was any. */
  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): boolean {
    const set = this.listeners.get(event);
    if (!set || set.size === 0) return false;
    for (const listener of [...set]) {
      try {
        (listener as (...a: Events[K]) => void)(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
    return true;
  }
}

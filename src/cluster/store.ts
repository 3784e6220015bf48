/**
 * The seam between the live handlers and where the session index lives. Handlers publish the
 * index operations of their own sockets; the store applies them to this node's index and, in a
 * cluster, shares them with the other nodes (and applies theirs). The rest of the hub never knows
 * which store runs.
 */
import type { IndexOp } from '../sessions/ops';
import type { SessionIndex } from '../sessions/sessionIndex';

export interface StoreStatus {
  /** The view is complete enough to serve (false while joining). */
  ready: boolean;
  /** The view may miss other nodes' changes (Redis unreachable, resynchronising). */
  partial: boolean;
  reason?: string;
}

/** What the store needs of the live layer, handed in by server.ts (the cluster never imports src/live/). */
export interface StoreHooks {
  /**
   * Refuses the local socket `socketId`: its tab lost a same-tab race to another node's claim. Its
   * leave is not silent: the `tab:down` it publishes removes its claim on the nodes that hold it.
   */
  refuseTab(socketId: string): void;
}

export interface ClusterStore {
  readonly nodeId: string;
  /** Applies an operation made by this node to the local index and shares it. */
  publish(op: IndexOp): void;
  status(): StoreStatus;
  /**
   * Whether a new socket may take over `tab`, held by another socket (the live layer refuses a
   * duplicate tab otherwise): in a cluster, when the holder's node stopped heartbeating.
   */
  mayReplace?(tab: { nodeId: string }): boolean;
  start(): Promise<void>;
  /** Leaves the cluster; `handOff` removes this node's sessions everywhere at once. */
  close(handOff: boolean): Promise<void>;
}

/** Single node: the index is the whole truth. */
export class LocalStore implements ClusterStore {
  constructor(
    readonly nodeId: string,
    private readonly index: SessionIndex,
  ) {}

  publish(op: IndexOp): void {
    this.index.apply(op);
  }

  status(): StoreStatus {
    return { ready: true, partial: false };
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}
}

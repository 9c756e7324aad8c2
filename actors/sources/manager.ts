// actors/sources: a node's presence-source manager — which sources run here, hand-overs, HTTP entry.
// A source runs on the rendezvous home of `source:<name>`; hosts start and stop here as homes change.

import { MailError } from "../../transport/errors.js";
import { homeOf } from "../../transport/placement.js";
import { type ActorHandle, spawnActor } from "../actor.js";
import type { SourceHttpRequest } from "./api.js";
import {
  type HandedPublication,
  type HostDeps,
  type HostedSource,
  type InputOutcome,
  newSourceRecord,
  SOURCE_KIND,
  type SourceCommand,
  type SourceRecord,
  spawnSourceHost,
} from "./host.js";

export const SOURCES_KIND = "sources";
const MANAGER_ID = "manager";

// ---- mail protocol ----------------------------------------------------------------------------

export type ManagerCommand =
  /** A source's previous home hands its publications to this node, the source's new home. */
  { type: "handover"; source: string; publications: HandedPublication[] };

// ---- manager ----------------------------------------------------------------------------------

/** A source as loaded by this node: definition, parsed config, where it came from. */
export interface LoadedSource extends HostedSource {
  /** "built-in", or the path of the module it was loaded from. */
  module: string;
}

/** The node's view of where things live (bootstrap's Homes). */
export interface SourcePlacement {
  homeOf(key: string): string;
  /** The nodes that can be homes. */
  list(): readonly string[];
}

export interface ManagerDeps extends HostDeps {
  sources: readonly LoadedSource[];
  placement: SourcePlacement;
  /** How long the homes must stay unchanged before sources start or stop (membership settling). */
  settleMs: number;
}

/** One source in /api/cluster: where it should run and how it does on this node. */
export interface SourceView extends SourceRecord {
  name: string;
  module: string;
  home: string;
}

/** What the admin port answers to `/sources/<name>/…`. */
export interface SourceHttpAnswer {
  status: number;
  body: unknown;
  headers?: Readonly<Record<string, string>>;
}

export function sourceKey(name: string): string {
  return `source:${name}`;
}

export class SourceManager {
  private readonly byName = new Map<string, LoadedSource>();
  private readonly records = new Map<string, SourceRecord>();
  private readonly hosts = new Map<string, ActorHandle>();
  /** Publications handed over before the source started here. */
  private readonly pending = new Map<string, HandedPublication[]>();
  private opened = false;
  private closed = false;
  private settle: NodeJS.Timeout | undefined;
  /** Starts and stops run one after the other. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ManagerDeps) {
    for (const source of deps.sources) {
      this.byName.set(source.name, source);
      this.records.set(source.name, newSourceRecord());
    }
    deps.router.placed(SOURCE_KIND, (name) => deps.placement.homeOf(sourceKey(name)));
    spawnActor<null, ManagerCommand>(
      deps.system,
      deps.router,
      deps.router.address(SOURCES_KIND, MANAGER_ID),
      {
        receive: (state, message) => {
          this.handedOver(message.source, message.publications);
          return state;
        },
      },
      null,
      { maxMailbox: deps.maxMailbox, log: deps.log },
    );
  }

  /** Starts placing sources (the node has announced itself). */
  open(): void {
    this.opened = true;
    this.placementChanged();
  }

  /** The homes changed: once they have settled, sources start and stop where they now belong. */
  placementChanged(): void {
    if (!this.opened || this.closed || this.byName.size === 0) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.enqueue(() => this.rebalance()), this.deps.settleMs);
  }

  /** Stops every source here, handing its publications to its next home. Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      clearTimeout(this.settle);
      this.enqueue(() => this.stopAll());
    }
    return this.queue;
  }

  view(): SourceView[] {
    return this.deps.sources.map((source) => ({
      name: source.name,
      module: source.module,
      home: this.deps.placement.homeOf(sourceKey(source.name)),
      ...(this.records.get(source.name) ?? newSourceRecord()),
    }));
  }

  /** A request to `/sources/<name>/<path>`: the source's `http` hook, then delivery to the source. */
  async http(name: string, request: SourceHttpRequest): Promise<SourceHttpAnswer> {
    const source = this.byName.get(name);
    if (!source?.definition.http) {
      return {
        status: 404,
        body: {
          error: `no presence source "${name}" takes HTTP requests on this node`,
          sources: [...this.byName.values()].filter((s) => s.definition.http).map((s) => s.name),
        },
      };
    }
    let decision: ReturnType<NonNullable<typeof source.definition.http>>;
    try {
      decision = source.definition.http(request, source.config);
    } catch (error) {
      this.deps.log.error("presence source failed on an HTTP request", { source: name, error });
      return { status: 500, body: { error: `source ${name} failed on the request` } };
    }
    if (!("deliver" in decision)) {
      return {
        status: decision.status,
        body: decision.body,
        ...(decision.headers ? { headers: decision.headers } : {}),
      };
    }
    const home = this.deps.placement.homeOf(sourceKey(name));
    const input: SourceCommand = { type: "input", message: decision.deliver };
    try {
      const outcome = await this.deps.router.ask<InputOutcome>(
        this.deps.router.address(SOURCE_KIND, name, home),
        input,
        this.deps.askTimeoutMs,
      );
      return outcome.applied
        ? { status: 200, body: { applied: true, source: name, presentities: outcome.presentities } }
        : {
            status: 202,
            body: {
              applied: false,
              source: name,
              presentities: outcome.presentities,
              reason: "taken; a presentity's home did not answer yet and the source keeps trying",
            },
          };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof MailError && error.code !== "remote") {
        return {
          status: 503,
          body: { error: `source ${name} cannot take it now (${message}); try again` },
          headers: { "retry-after": "1" },
        };
      }
      return { status: 500, body: { error: message } };
    }
  }

  private enqueue(step: () => Promise<void>): void {
    this.queue = this.queue.then(step).catch((error: unknown) => {
      this.deps.log.error("presence sources could not be placed", { error });
    });
  }

  private async rebalance(): Promise<void> {
    if (this.closed) return;
    const self = this.deps.router.nodeId;
    for (const source of this.deps.sources) {
      const home = this.deps.placement.homeOf(sourceKey(source.name));
      const running = this.hosts.has(source.name);
      if (home === self && !running) this.start(source);
      else if (home !== self && running) await this.stop(source.name, home);
    }
  }

  private async stopAll(): Promise<void> {
    const others = this.deps.placement.list().filter((id) => id !== this.deps.router.nodeId);
    for (const name of [...this.hosts.keys()]) {
      await this.stop(name, homeOf(sourceKey(name), others));
    }
  }

  private start(source: LoadedSource): void {
    const record = this.records.get(source.name) ?? newSourceRecord();
    this.records.set(source.name, record);
    const adopted = this.pending.get(source.name) ?? [];
    this.pending.delete(source.name);
    this.hosts.set(source.name, spawnSourceHost(this.deps, source, record, adopted));
    this.deps.log.info("presence source runs on this node", {
      source: source.name,
      adopted: adopted.length,
    });
  }

  /** Stops the source here; its publications go to `next`, the node it runs on from now. */
  private async stop(name: string, next: string | undefined): Promise<void> {
    const handle = this.hosts.get(name);
    if (!handle) return;
    this.hosts.delete(name);
    let publications: HandedPublication[] = [];
    try {
      const stop: SourceCommand = { type: "stop" };
      publications = await this.deps.router.ask<HandedPublication[]>(
        handle.address,
        stop,
        this.deps.askTimeoutMs,
      );
    } catch (error) {
      this.deps.log.warn("presence source did not stop in time; its publications lapse", {
        source: name,
        error,
      });
    }
    handle.stop();
    const record = this.records.get(name);
    if (record) record.state = "stopped";
    this.deps.log.info("presence source stopped on this node", {
      source: name,
      next: next ?? null,
      publications: publications.length,
    });
    if (next === undefined || publications.length === 0) return;
    const handover: ManagerCommand = { type: "handover", source: name, publications };
    this.deps.router.send(this.deps.router.address(SOURCES_KIND, MANAGER_ID, next), handover);
  }

  private handedOver(name: string, publications: HandedPublication[]): void {
    if (!this.byName.has(name)) {
      this.deps.log.warn("publications handed over for a source this node does not load", {
        source: name,
        hint: "start every node with the same --source list",
      });
      return;
    }
    const host = this.hosts.get(name);
    if (host) {
      const adopt: SourceCommand = { type: "adopt", publications };
      this.deps.router.send(host.address, adopt);
      return;
    }
    this.pending.set(name, [...(this.pending.get(name) ?? []), ...publications]);
  }
}

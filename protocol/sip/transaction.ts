// protocol/sip: the RFC 3261 §17 transaction layer (with the RFC 6026 "Accepted" states), pure: no sockets.
// Owns the four state machines, their timers on an injected clock, transaction keys and the transaction table.

import { makeResponse } from "./headers.js";
import type { NameAddr, SipHeaders, SipRequest, SipResponse, Via } from "./message.js";

// ---------------------------------------------------------------------------------------------
// Clock and timer values
// ---------------------------------------------------------------------------------------------

export interface TimerHandle {
  cancel(): void;
}

/** Where transactions arm their timers; tests inject a ManualClock. */
export interface Clock {
  set(ms: number, fire: () => void): TimerHandle;
}

/** Real timers, unref'd: a pending retransmission alone must not keep the process alive. */
export const systemClock: Clock = {
  set(ms, fire) {
    const timer = setTimeout(fire, ms);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

interface ManualTimer {
  at: number;
  seq: number;
  fire: () => void;
  live: boolean;
}

/** A clock that only moves when told to; timers fire in due order, including ones armed while firing. */
export class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers: ManualTimer[] = [];

  get now(): number {
    return this.#now;
  }

  set(ms: number, fire: () => void): TimerHandle {
    const timer: ManualTimer = {
      at: this.#now + Math.max(0, ms),
      seq: this.#seq++,
      fire,
      live: true,
    };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.live = false;
      },
    };
  }

  /** Timers armed and not yet fired or cancelled. */
  pending(): number {
    return this.#timers.filter((t) => t.live).length;
  }

  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => t.live);
      const next = this.#timers
        .filter((t) => t.at <= until)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.#now = next.at;
      next.live = false;
      next.fire();
    }
    this.#now = until;
  }
}

/** RFC 3261 §17.1.1.1 / Table 4: T1 is the RTT estimate, T2 the retransmit cap, T4 a message's lifetime. */
export interface SipTimers {
  t1: number;
  t2: number;
  t4: number;
}

export const defaultTimers: SipTimers = { t1: 500, t2: 4000, t4: 5000 };

export interface TransactionContext {
  clock: Clock;
  timers: SipTimers;
  /** TCP: no retransmission timers, and the wait states (D, I, J, K) last 0. */
  reliable: boolean;
}

/** One named timer slot: arming it again replaces the previous one. */
class Slot {
  #handle: TimerHandle | undefined;
  constructor(private readonly clock: Clock) {}
  arm(ms: number, fire: () => void): void {
    this.#handle?.cancel();
    this.#handle = this.clock.set(ms, () => {
      this.#handle = undefined;
      fire();
    });
  }
  cancel(): void {
    this.#handle?.cancel();
    this.#handle = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Transaction keys (§17.1.3, §17.2.3)
// ---------------------------------------------------------------------------------------------

/** RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this; others get the legacy match. */
export const magicCookie = "z9hG4bK";

function topVia(message: { headers: SipHeaders }): Via | undefined {
  return message.headers.via[0];
}

function branchOf(via: Via | undefined): string | undefined {
  const branch = via?.params.branch;
  return typeof branch === "string" && branch.length > 0 ? branch : undefined;
}

function sentBy(via: Via): string {
  return `${via.host.toLowerCase()}:${via.port ?? ""}`;
}

/**
 * §17.1.3: a response matches a client transaction by the top Via branch and the CSeq method
 * ("since a CANCEL request creates a new transaction, but shares the same value of the branch").
 */
export function clientTransactionKey(message: SipRequest | SipResponse): string | undefined {
  const branch = branchOf(topVia(message));
  if (!branch) return undefined;
  return `${branch}|${message.headers.cseq.method.toUpperCase()}`;
}

/**
 * §17.2.3: a request matches a server transaction by branch, sent-by and method, where an ACK
 * matches the INVITE it acknowledges. Without the magic cookie (RFC 2543 peers) the fallback
 * compares Request-URI, From tag, Call-ID, CSeq number and the top Via instead; the To tag is
 * left out so that the ACK of a non-2xx final (which carries our To tag) finds its INVITE.
 */
export function serverTransactionKey(
  request: SipRequest,
  method = request.method,
): string | undefined {
  const via = topVia(request);
  if (!via) return undefined;
  const matchMethod = method.toUpperCase() === "ACK" ? "INVITE" : method.toUpperCase();
  const branch = branchOf(via);
  if (branch?.startsWith(magicCookie)) return `${branch}|${sentBy(via)}|${matchMethod}`;
  const fromTag = request.headers.from.params.tag ?? "";
  return [
    "legacy",
    request.uri,
    fromTag,
    request.headers["call-id"],
    request.headers.cseq.seq,
    sentBy(via),
    branch ?? "",
    matchMethod,
  ].join("|");
}

// ---------------------------------------------------------------------------------------------
// Client transactions
// ---------------------------------------------------------------------------------------------

export interface ClientTransactionHooks {
  /** Hands the request (a retransmission, or the ACK of a non-2xx final) to the transport. */
  send(request: SipRequest): void;
  /** Every response for the TU: provisional, final, and the synthesised 408 (Timer B/F) or 503 (transport). */
  deliver(response: SipResponse): void;
  /** The transaction reached Terminated: drop it from the table. */
  terminated(): void;
}

export type NonInviteClientState = "trying" | "proceeding" | "completed" | "terminated";
export type InviteClientState = "calling" | "proceeding" | "completed" | "accepted" | "terminated";

abstract class ClientTransactionBase<S extends string> {
  readonly side = "client";
  abstract state: S | "terminated";
  protected readonly timers: SipTimers;
  protected readonly clock: Clock;
  protected readonly reliable: boolean;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    context: TransactionContext,
    protected readonly hooks: ClientTransactionHooks,
  ) {
    this.timers = context.timers;
    this.clock = context.clock;
    this.reliable = context.reliable;
  }

  abstract start(): void;
  abstract receive(response: SipResponse): void;
  protected abstract stopTimers(): void;

  /**
   * §17.1.4: "The client transaction SHOULD inform the TU that a transport failure has occurred,
   * and the client transaction SHOULD transition directly to the "Terminated" state" — the TU
   * gets a 503 while no final has arrived.
   */
  abstract transportError(): void;

  /** Ends the transaction without telling the TU (shutdown). */
  terminate(): void {
    if (this.state === "terminated") return;
    this.stopTimers();
    this.state = "terminated";
    this.hooks.terminated();
  }

  protected synthesise(status: number): void {
    this.hooks.deliver(makeResponse(this.request, status));
    this.terminate();
  }
}

/**
 * RFC 3261 §17.1.2 non-INVITE client transaction (Figure 6).
 *
 *   Trying --1xx--> Proceeding --200-699--> Completed --Timer K--> Terminated
 *   Trying/Proceeding --Timer F or transport error--> Terminated (TU gets 408 / 503)
 *
 * §17.1.2.2: "If Timer F fires while the client transaction is still in the "Trying" state, the
 * client transaction SHOULD inform the TU about the timeout, and then it SHOULD enter the
 * "Terminated" state." and the same for "Proceeding": a 1xx never stops Timer F (the `sip`
 * package cancels it on the first 1xx, so its transaction never ends).
 */
export class NonInviteClientTransaction extends ClientTransactionBase<NonInviteClientState> {
  state: NonInviteClientState = "trying";
  #timerE: Slot;
  #timerF: Slot;
  #timerK: Slot;
  #interval = 0;

  constructor(
    key: string,
    request: SipRequest,
    context: TransactionContext,
    hooks: ClientTransactionHooks,
  ) {
    super(key, request, context, hooks);
    this.#timerE = new Slot(this.clock);
    this.#timerF = new Slot(this.clock);
    this.#timerK = new Slot(this.clock);
  }

  start(): void {
    this.hooks.send(this.request);
    if (!this.reliable) {
      this.#interval = this.timers.t1;
      this.#timerE.arm(this.#interval, () => this.#onTimerE());
    }
    this.#timerF.arm(64 * this.timers.t1, () => this.synthesise(408));
  }

  // §17.1.2.2: E restarts at MIN(2*T1, T2), MIN(4*T1, T2), ... in Trying, and at T2 in
  // Proceeding: "Timer E MUST be reset with a value of T2 seconds". The cap is what `sip` lacks.
  #onTimerE(): void {
    if (this.state !== "trying" && this.state !== "proceeding") return;
    this.hooks.send(this.request);
    this.#interval =
      this.state === "trying" ? Math.min(2 * this.#interval, this.timers.t2) : this.timers.t2;
    this.#timerE.arm(this.#interval, () => this.#onTimerE());
  }

  receive(response: SipResponse): void {
    if (this.state !== "trying" && this.state !== "proceeding") return;
    if (response.status < 200) {
      this.state = "proceeding";
      this.hooks.deliver(response);
      return;
    }
    this.#timerE.cancel();
    this.#timerF.cancel();
    this.state = "completed";
    this.hooks.deliver(response);
    // Timer K absorbs retransmitted finals: T4 on UDP, zero on TCP.
    if (this.reliable) this.terminate();
    else this.#timerK.arm(this.timers.t4, () => this.terminate());
  }

  transportError(): void {
    if (this.state === "trying" || this.state === "proceeding") this.synthesise(503);
  }

  protected stopTimers(): void {
    this.#timerE.cancel();
    this.#timerF.cancel();
    this.#timerK.cancel();
  }
}

/**
 * RFC 3261 §17.1.1 INVITE client transaction (Figure 5), as updated by RFC 6026 §7.2 (Accepted).
 *
 *   Calling --1xx--> Proceeding
 *   Calling/Proceeding --300-699 (send ACK)--> Completed --Timer D--> Terminated
 *   Calling/Proceeding --2xx--> Accepted --Timer M--> Terminated
 *   Calling --Timer B or transport error--> Terminated (TU gets 408 / 503)
 *
 * Timer B only runs in Calling (§17.1.1.2); once a 1xx arrived the TU ends a stuck INVITE with
 * CANCEL (§9.1). RFC 6026 §7.2: in Accepted "Any 2xx responses that match this client transaction
 * and that are received while in the "Accepted" state MUST be passed up to the TU"; the ACK for a
 * 2xx is the TU's own (§13.2.2.4), the transaction only ACKs non-2xx finals (§17.1.1.3).
 */
export class InviteClientTransaction extends ClientTransactionBase<InviteClientState> {
  state: InviteClientState = "calling";
  #timerA: Slot;
  #timerB: Slot;
  #timerDM: Slot;
  #interval = 0;
  #ack: SipRequest | undefined;

  constructor(
    key: string,
    request: SipRequest,
    context: TransactionContext,
    hooks: ClientTransactionHooks,
  ) {
    super(key, request, context, hooks);
    this.#timerA = new Slot(this.clock);
    this.#timerB = new Slot(this.clock);
    this.#timerDM = new Slot(this.clock);
  }

  start(): void {
    this.hooks.send(this.request);
    if (!this.reliable) {
      this.#interval = this.timers.t1;
      this.#timerA.arm(this.#interval, () => this.#onTimerA());
    }
    this.#timerB.arm(64 * this.timers.t1, () => {
      if (this.state === "calling") this.synthesise(408);
    });
  }

  // §17.1.1.2: Timer A doubles without a cap; Timer B bounds it.
  #onTimerA(): void {
    if (this.state !== "calling") return;
    this.hooks.send(this.request);
    this.#interval *= 2;
    this.#timerA.arm(this.#interval, () => this.#onTimerA());
  }

  receive(response: SipResponse): void {
    switch (this.state) {
      case "calling":
      case "proceeding":
        this.#timerA.cancel();
        this.#timerB.cancel();
        if (response.status < 200) {
          this.state = "proceeding";
          this.hooks.deliver(response);
        } else if (response.status < 300) {
          this.state = "accepted";
          this.hooks.deliver(response);
          this.#timerDM.arm(64 * this.timers.t1, () => this.terminate());
        } else {
          this.state = "completed";
          this.#ack = ackForNon2xx(this.request, response);
          this.hooks.send(this.#ack);
          this.hooks.deliver(response);
          // §17.1.1.2: Timer D is "at least 32 seconds for unreliable transports, and ... zero
          // seconds for reliable transports"; 64*T1 is 32 s at the default T1.
          if (this.reliable) this.terminate();
          else this.#timerDM.arm(64 * this.timers.t1, () => this.terminate());
        }
        return;
      case "completed":
        // §17.1.1.2: "Any retransmissions of the final response that are received while in the
        // "Completed" state MUST cause the ACK to be re-passed to the transport layer".
        if (response.status >= 300 && this.#ack) this.hooks.send(this.#ack);
        return;
      case "accepted":
        if (response.status >= 200 && response.status < 300) this.hooks.deliver(response);
        return;
      case "terminated":
        return;
    }
  }

  // §17.1.4 applies in any state before a final: over TCP a broken connection means the final
  // response can no longer arrive, so Proceeding ends too rather than waiting forever.
  transportError(): void {
    if (this.state === "calling" || this.state === "proceeding") this.synthesise(503);
  }

  protected stopTimers(): void {
    this.#timerA.cancel();
    this.#timerB.cancel();
    this.#timerDM.cancel();
  }
}

/**
 * §17.1.1.3: the ACK of a non-2xx final. "The ACK MUST contain a single Via header field, and
 * this MUST be equal to the top Via header field of the original request"; its To is the
 * response's (with the tag), and Route header fields of the INVITE MUST appear in it.
 */
export function ackForNon2xx(invite: SipRequest, response: SipResponse): SipRequest {
  const via = invite.headers.via[0];
  const headers: SipHeaders = {
    via: via ? [via] : [],
    to: response.headers.to,
    from: invite.headers.from,
    "call-id": invite.headers["call-id"],
    cseq: { seq: invite.headers.cseq.seq, method: "ACK" },
    "max-forwards": "70",
  };
  const route: NameAddr[] | undefined = invite.headers.route;
  if (route && route.length > 0) headers.route = route;
  return {
    kind: "request",
    method: "ACK",
    uri: invite.uri,
    version: invite.version,
    headers,
    body: Buffer.alloc(0),
  };
}

// ---------------------------------------------------------------------------------------------
// Server transactions
// ---------------------------------------------------------------------------------------------

export interface ServerTransactionHooks {
  /** Hands a response (first send or retransmission) to the transport. */
  send(response: SipResponse): void;
  /** The transaction failed: Timer H fired (no ACK) or the transport could not deliver. */
  failed(reason: "no-ack" | "transport"): void;
  terminated(): void;
}

/** What the layer should do with a request that matched a server transaction. */
export type Absorption = "absorbed" | "to-tu";

export type NonInviteServerState = "trying" | "proceeding" | "completed" | "terminated";
export type InviteServerState =
  | "proceeding"
  | "completed"
  | "confirmed"
  | "accepted"
  | "terminated";

abstract class ServerTransactionBase<S extends string> {
  readonly side = "server";
  abstract state: S | "terminated";
  protected readonly timers: SipTimers;
  protected readonly clock: Clock;
  protected readonly reliable: boolean;
  protected last: SipResponse | undefined;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    context: TransactionContext,
    protected readonly hooks: ServerTransactionHooks,
  ) {
    this.timers = context.timers;
    this.clock = context.clock;
    this.reliable = context.reliable;
  }

  /** The most recent response sent (what a retransmitted request gets again). */
  get lastResponse(): SipResponse | undefined {
    return this.last;
  }

  /** The final response sent, once there is one. */
  get finalResponse(): SipResponse | undefined {
    return this.last && this.last.status >= 200 ? this.last : undefined;
  }

  /** A request matching this transaction arrived (retransmission, or ACK). */
  abstract receive(request: SipRequest): Absorption;
  /** The TU responds; returns false when the state machine discards the response. */
  abstract respond(response: SipResponse): boolean;
  protected abstract stopTimers(): void;

  transportError(): void {
    if (this.state === "terminated") return;
    this.hooks.failed("transport");
    this.terminate();
  }

  terminate(): void {
    if (this.state === "terminated") return;
    this.stopTimers();
    this.state = "terminated";
    this.hooks.terminated();
  }
}

/**
 * RFC 3261 §17.2.2 non-INVITE server transaction (Figure 8, with erratum 1470: a final from the
 * TU in Trying goes to Completed as well).
 *
 *   Trying --1xx from TU--> Proceeding --200-699 from TU--> Completed --Timer J--> Terminated
 *
 * Retransmitted requests: discarded in Trying, answered with the last provisional in Proceeding
 * and with the final in Completed. "Any other final responses passed by the TU to the server
 * transaction MUST be discarded while in the "Completed" state."
 */
export class NonInviteServerTransaction extends ServerTransactionBase<NonInviteServerState> {
  state: NonInviteServerState = "trying";
  #timerJ: Slot;

  constructor(
    key: string,
    request: SipRequest,
    context: TransactionContext,
    hooks: ServerTransactionHooks,
  ) {
    super(key, request, context, hooks);
    this.#timerJ = new Slot(this.clock);
  }

  receive(_request: SipRequest): Absorption {
    if ((this.state === "proceeding" || this.state === "completed") && this.last) {
      this.hooks.send(this.last);
    }
    return "absorbed";
  }

  respond(response: SipResponse): boolean {
    if (this.state !== "trying" && this.state !== "proceeding") return false;
    this.last = response;
    if (response.status < 200) {
      this.state = "proceeding";
      this.hooks.send(response);
      return true;
    }
    this.state = "completed";
    this.hooks.send(response);
    // Timer J: 64*T1 on UDP to answer retransmissions, zero on TCP.
    if (this.reliable) this.terminate();
    else this.#timerJ.arm(64 * this.timers.t1, () => this.terminate());
    return true;
  }

  protected stopTimers(): void {
    this.#timerJ.cancel();
  }
}

/**
 * RFC 3261 §17.2.1 INVITE server transaction (Figure 7), as updated by RFC 6026 §7.1.
 *
 *   Proceeding --300-699 from TU--> Completed --ACK--> Confirmed --Timer I--> Terminated
 *   Proceeding --2xx from TU--> Accepted --Timer L--> Terminated
 *   Completed --Timer H--> Terminated (TU told the ACK never came)
 *
 * §17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows that the
 * TU will generate a provisional or final response within 200 ms" — sent here if the TU is slower.
 * Timer G retransmits a non-2xx final on UDP, doubling up to T2. RFC 6026 §7.1: in Accepted, "Any
 * retransmissions of the INVITE received while in the "Accepted" state MUST be absorbed", while
 * 2xx retransmissions from the TU are passed on; an ACK reaching Accepted goes to the TU.
 */
export class InviteServerTransaction extends ServerTransactionBase<InviteServerState> {
  state: InviteServerState = "proceeding";
  #timerTrying: Slot;
  #timerG: Slot;
  #timerH: Slot;
  #timerIL: Slot;
  #interval = 0;

  constructor(
    key: string,
    request: SipRequest,
    context: TransactionContext,
    hooks: ServerTransactionHooks,
  ) {
    super(key, request, context, hooks);
    this.#timerTrying = new Slot(this.clock);
    this.#timerG = new Slot(this.clock);
    this.#timerH = new Slot(this.clock);
    this.#timerIL = new Slot(this.clock);
    this.#timerTrying.arm(200, () => {
      if (this.state === "proceeding" && !this.last) this.respond(makeResponse(request, 100));
    });
  }

  receive(request: SipRequest): Absorption {
    const isAck = request.method.toUpperCase() === "ACK";
    switch (this.state) {
      case "proceeding":
        if (!isAck && this.last) this.hooks.send(this.last);
        return "absorbed";
      case "completed":
        if (isAck) this.#confirm();
        else if (this.last) this.hooks.send(this.last);
        return "absorbed";
      case "accepted":
        return isAck ? "to-tu" : "absorbed";
      case "confirmed":
      case "terminated":
        return "absorbed";
    }
  }

  // §17.2.1: "If an ACK is received while the server transaction is in the "Completed" state, the
  // server transaction MUST transition to the "Confirmed" state." Timer I: T4 on UDP, zero on TCP.
  #confirm(): void {
    this.#timerG.cancel();
    this.#timerH.cancel();
    this.state = "confirmed";
    if (this.reliable) this.terminate();
    else this.#timerIL.arm(this.timers.t4, () => this.terminate());
  }

  respond(response: SipResponse): boolean {
    if (this.state === "accepted") {
      if (response.status < 200 || response.status >= 300) return false;
      this.last = response;
      this.hooks.send(response);
      return true;
    }
    if (this.state !== "proceeding") return false;
    this.#timerTrying.cancel();
    this.last = response;
    if (response.status < 200) {
      this.hooks.send(response);
    } else if (response.status < 300) {
      this.state = "accepted";
      this.hooks.send(response);
      this.#timerIL.arm(64 * this.timers.t1, () => this.terminate());
    } else {
      this.state = "completed";
      this.hooks.send(response);
      if (!this.reliable) {
        this.#interval = this.timers.t1;
        this.#timerG.arm(this.#interval, () => this.#onTimerG());
      }
      this.#timerH.arm(64 * this.timers.t1, () => {
        if (this.state !== "completed") return;
        // "it implies that the ACK was never received ... MUST indicate to the TU that a
        // transaction failure has occurred."
        this.hooks.failed("no-ack");
        this.terminate();
      });
    }
    return true;
  }

  #onTimerG(): void {
    if (this.state !== "completed" || !this.last) return;
    this.hooks.send(this.last);
    this.#interval = Math.min(2 * this.#interval, this.timers.t2);
    this.#timerG.arm(this.#interval, () => this.#onTimerG());
  }

  protected stopTimers(): void {
    this.#timerTrying.cancel();
    this.#timerG.cancel();
    this.#timerH.cancel();
    this.#timerIL.cancel();
  }
}

export type ClientTransaction = NonInviteClientTransaction | InviteClientTransaction;
export type ServerTransaction = NonInviteServerTransaction | InviteServerTransaction;

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/** A request that cannot open a transaction: no top Via (branch), or its key is already live. */
export class TransactionKeyError extends Error {
  override readonly name = "TransactionKeyError";
  readonly retryable = false;
  constructor(
    readonly code: "no-transaction-key" | "duplicate-transaction",
    message: string,
  ) {
    super(message);
  }
}

/**
 * The live transactions of one endpoint, keyed per §17.1.3 and §17.2.3. Transactions remove
 * themselves when they reach Terminated.
 */
export class TransactionTable {
  readonly #clients = new Map<string, ClientTransaction>();
  readonly #servers = new Map<string, ServerTransaction>();

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly timers: SipTimers = defaultTimers,
  ) {}

  get clientCount(): number {
    return this.#clients.size;
  }

  get serverCount(): number {
    return this.#servers.size;
  }

  /**
   * Registers a client transaction for a request whose top Via carries its branch; the caller
   * then calls `start()`, so hooks may refer to the transaction from the first send on.
   */
  createClient(
    request: SipRequest,
    reliable: boolean,
    hooks: ClientTransactionHooks,
  ): ClientTransaction {
    const key = clientTransactionKey(request);
    if (!key) throw new TransactionKeyError("no-transaction-key", "the request has no Via branch");
    if (this.#clients.has(key)) {
      throw new TransactionKeyError("duplicate-transaction", `client transaction ${key} is live`);
    }
    const context: TransactionContext = { clock: this.clock, timers: this.timers, reliable };
    const wrapped: ClientTransactionHooks = {
      send: hooks.send,
      deliver: hooks.deliver,
      terminated: () => {
        if (this.#clients.get(key) === transaction) this.#clients.delete(key);
        hooks.terminated();
      },
    };
    const transaction: ClientTransaction =
      request.method.toUpperCase() === "INVITE"
        ? new InviteClientTransaction(key, request, context, wrapped)
        : new NonInviteClientTransaction(key, request, context, wrapped);
    this.#clients.set(key, transaction);
    return transaction;
  }

  /** Creates a server transaction for a request that matched none (never for ACK). */
  createServer(
    request: SipRequest,
    reliable: boolean,
    hooks: ServerTransactionHooks,
  ): ServerTransaction {
    const key = serverTransactionKey(request);
    if (!key) throw new TransactionKeyError("no-transaction-key", "the request has no Via");
    const context: TransactionContext = { clock: this.clock, timers: this.timers, reliable };
    const wrapped: ServerTransactionHooks = {
      send: hooks.send,
      failed: hooks.failed,
      terminated: () => {
        if (this.#servers.get(key) === transaction) this.#servers.delete(key);
        hooks.terminated();
      },
    };
    const transaction: ServerTransaction =
      request.method.toUpperCase() === "INVITE"
        ? new InviteServerTransaction(key, request, context, wrapped)
        : new NonInviteServerTransaction(key, request, context, wrapped);
    this.#servers.set(key, transaction);
    return transaction;
  }

  findClient(response: SipResponse): ClientTransaction | undefined {
    const key = clientTransactionKey(response);
    return key ? this.#clients.get(key) : undefined;
  }

  findServer(request: SipRequest): ServerTransaction | undefined {
    const key = serverTransactionKey(request);
    return key ? this.#servers.get(key) : undefined;
  }

  /** RFC 3261 §9.2: the transaction a CANCEL names — same match, method INVITE. */
  findCancelTarget(cancel: SipRequest): ServerTransaction | undefined {
    const key = serverTransactionKey(cancel, "INVITE");
    return key ? this.#servers.get(key) : undefined;
  }

  /** Shutdown: every transaction ends without further sends; each `terminated` hook runs. */
  close(): void {
    for (const transaction of [...this.#clients.values()]) transaction.terminate();
    for (const transaction of [...this.#servers.values()]) transaction.terminate();
  }
}

// transport: the SIP edge of a node — one UDP socket and one TCP listener on the same host:port.
// Owns RFC 3261 §18 sending and receiving, TCP framing and connection reuse, and the §17 transaction table.

import dgram from "node:dgram";
import net from "node:net";
import type { Logger } from "../bootstrap/log.js";
import { parseMessage, SipParseError, serializeMessage } from "../protocol/sip/codec.js";
import { StreamFramer } from "../protocol/sip/framing.js";
import { makeResponse, newBranch, randomToken } from "../protocol/sip/headers.js";
import type { Peer, SipMessage, SipRequest, SipResponse, Via } from "../protocol/sip/message.js";
import {
  type ClientTransaction,
  type Clock,
  defaultTimers,
  type ServerTransaction,
  systemClock,
  type TimerHandle,
  TransactionTable,
} from "../protocol/sip/transaction.js";
import { type SpanAttributes, sipTransaction } from "./tracing.js";

export interface IncomingRequest {
  readonly request: SipRequest;
  /** Source: transport, address, port, and the connection id for TCP. */
  readonly peer: Peer;
  /** Responds through the server transaction (retransmissions absorbed, the response re-sent). */
  respond(response: SipResponse): void;
}

export interface EndpointOptions {
  /** IPv4 address to bind, e.g. "127.0.0.1". */
  host: string;
  /** One port for UDP and TCP; 0 picks a free one (the same number for both). */
  port: number;
  /** A request whose body is larger is answered 413 (UDP and TCP). */
  maxMessageBytes: number;
  log: Logger;
  timers?: Partial<{ t1: number; t2: number; t4: number }>;
  /** Transaction and idle timers run on this clock (tests inject a ManualClock). */
  clock?: Clock;
  /** A TCP connection with no transaction and no traffic for this long is closed (default 3 min). */
  idleConnectionMs?: number;
  /** Attributes of every transaction span (the node's id and role). */
  spanAttributes?: () => SpanAttributes;
  /** SO_RCVBUF of the UDP socket (the kernel caps it at net.core.rmem_max); default: the kernel's. */
  udpReceiveBufferBytes?: number;
}

export interface EndpointStats {
  udpIn: number;
  tcpIn: number;
  badRequests: number;
  tooLarge: number;
  /** Responses that matched no client transaction (dropped). */
  strayResponses: number;
  openConnections: number;
  clientTransactions: number;
  serverTransactions: number;
}

/** RFC 3261 §18.1.1 asks for congestion control above the path MTU; we switch only where UDP must fail. */
const maxDatagramBytes = 65_000;
/** The header section of one message; larger is garbage on TCP. */
const maxHeaderBytes = 64 * 1024;
const defaultIdleConnectionMs = 180_000;
const defaultSipPort = 5060;
const bindAttempts = 20;

interface Connection {
  readonly id: string;
  readonly socket: net.Socket;
  readonly framer: StreamFramer;
  readonly address: string;
  readonly port: number;
  /** Transactions that send on this connection; idle only counts when none do. */
  readonly servers: Set<ServerTransaction>;
  /** Client transactions also fail when the connection goes: their response cannot come back. */
  readonly clients: Set<ClientTransaction>;
  idle: TimerHandle | undefined;
  closed: boolean;
}

/**
 * A response generated here rather than by the TU. §8.2.6.2: "the UAS MUST add a tag to the To
 * header field in the response (with the exception of the 100 (Trying) response" — reusing the
 * tag of an earlier response on the same transaction when there is one.
 */
function localResponse(
  request: SipRequest,
  status: number,
  reason?: string,
  earlier?: SipResponse,
): SipResponse {
  const response = makeResponse(request, status, reason);
  if (status > 100 && !response.headers.to.params.tag) {
    response.headers.to.params.tag = earlier?.headers.to.params.tag ?? randomToken();
  }
  return response;
}

function describeError(error: unknown): string {
  if (error && typeof error === "object" && "code" in error) return String(error.code);
  return error instanceof Error ? error.message : String(error);
}

export class SipEndpoint {
  readonly host: string;
  readonly port: number;
  readonly #udp: dgram.Socket;
  readonly #tcp: net.Server;
  readonly #options: EndpointOptions;
  readonly #onRequest: (incoming: IncomingRequest) => void;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #table: TransactionTable;
  readonly #idleMs: number;
  readonly #connections = new Map<string, Connection>();
  /** Open connections by remote "address:port", for reuse (§18.1.1; clients like SIPp listen on theirs). */
  readonly #byRemote = new Map<string, Connection>();
  #nextConnection = 1;
  #closed = false;
  readonly #counts = { udpIn: 0, tcpIn: 0, badRequests: 0, tooLarge: 0, strayResponses: 0 };

  private constructor(
    udp: dgram.Socket,
    tcp: net.Server,
    port: number,
    options: EndpointOptions,
    onRequest: (incoming: IncomingRequest) => void,
  ) {
    this.host = options.host;
    this.port = port;
    this.#udp = udp;
    this.#tcp = tcp;
    this.#options = options;
    this.#onRequest = onRequest;
    this.#log = options.log.child({ component: "sip-endpoint", sipPort: port });
    this.#clock = options.clock ?? systemClock;
    this.#table = new TransactionTable(this.#clock, { ...defaultTimers, ...options.timers });
    this.#idleMs = options.idleConnectionMs ?? defaultIdleConnectionMs;
    udp.on("message", (data, rinfo) => this.#guard(() => this.#onDatagram(data, rinfo)));
    udp.on("error", (error) => this.#log.error("sip udp socket error", { error }));
    tcp.on("connection", (socket) => this.#guard(() => this.#adopt(socket)));
    tcp.on("error", (error) => this.#log.error("sip tcp listener error", { error }));
  }

  /** Binds UDP and TCP on the same port; with port 0, retries until both get the same free one. */
  static async listen(
    options: EndpointOptions,
    onRequest: (incoming: IncomingRequest) => void,
  ): Promise<SipEndpoint> {
    for (let attempt = 1; ; attempt++) {
      const tcp = net.createServer();
      const port = await new Promise<number>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen({ host: options.host, port: options.port, exclusive: true }, () => {
          tcp.off("error", reject);
          const address = tcp.address();
          resolve(typeof address === "object" && address ? address.port : options.port);
        });
      });
      const udp = dgram.createSocket({
        type: "udp4",
        ...(options.udpReceiveBufferBytes ? { recvBufferSize: options.udpReceiveBufferBytes } : {}),
      });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once("error", reject);
          udp.bind({ address: options.host, port, exclusive: true }, () => {
            udp.off("error", reject);
            resolve();
          });
        });
        const endpoint = new SipEndpoint(udp, tcp, port, options, onRequest);
        const asked = options.udpReceiveBufferBytes;
        // Linux reports twice what it grants (the rest is its bookkeeping).
        if (asked && udp.getRecvBufferSize() / 2 < asked) {
          endpoint.#log.warn("the kernel granted a smaller SIP UDP receive buffer than asked", {
            asked,
            granted: udp.getRecvBufferSize() / 2,
            hint: "raise net.core.rmem_max (sysctl) to get the whole buffer",
          });
        }
        return endpoint;
      } catch (error) {
        udp.close();
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
        if (
          options.port !== 0 ||
          describeError(error) !== "EADDRINUSE" ||
          attempt >= bindAttempts
        ) {
          throw error;
        }
      }
    }
  }

  /**
   * Sends a request in a new client transaction and resolves with the final response: 408 on
   * Timer B/F, 503 on transport failure or close. Pushes our Via (fresh branch, rport) on top;
   * a CANCEL whose top Via names a branch keeps that branch (§9.1). Never rejects.
   */
  request(
    request: SipRequest,
    target: Peer,
    onProvisional?: (response: SipResponse) => void,
  ): Promise<SipResponse> {
    // Dropped once ended: the transaction's callbacks keep this scope until it terminates.
    let span = sipTransaction("client", request.method, () => [this.#options.spanAttributes?.()]);
    return new Promise<SipResponse>((resolve) => {
      let settled = false;
      const settle = (response: SipResponse): void => {
        if (settled) return;
        settled = true;
        // Ended before its bytes were made (closed, or failed to prepare): described from the request.
        span?.describe(request, target);
        span?.end(response.status);
        span = undefined;
        resolve(response);
      };
      try {
        if (this.#closed) {
          settle(makeResponse(request, 503, "Endpoint Closed"));
          return;
        }
        const { message, bytes, peer } = this.#prepare(request, target, true);
        span?.describe(message, target, bytes);
        let connection: Connection | undefined;
        const transaction = this.#table.createClient(message, peer.transport === "tcp", {
          send: (outgoing) => {
            const data = outgoing === message ? bytes : serializeMessage(outgoing);
            connection = this.#transmit(data, peer, connection, (error) => {
              this.#log.warn("sip request not sent", {
                method: message.method,
                to: `${peer.transport}:${peer.address}:${peer.port}`,
                error: describeError(error),
              });
              transaction.transportError();
            });
            if (connection) this.#attach(connection, transaction);
          },
          deliver: (response) => {
            if (response.status >= 200) settle(response);
            else if (!settled) this.#guard(() => onProvisional?.(response));
          },
          terminated: () => {
            if (connection) this.#detach(connection, transaction);
            settle(makeResponse(message, 503, "Endpoint Closed"));
          },
        });
        transaction.start();
      } catch (error) {
        this.#log.error("sip request failed before sending", { method: request.method, error });
        settle(makeResponse(request, 503));
      }
    });
  }

  /** Sends an ACK (or another stateless request) outside any transaction, with our Via on top. */
  sendStateless(request: SipRequest, target: Peer): void {
    if (this.#closed) return;
    try {
      const { bytes, peer } = this.#prepare(request, target, false);
      this.#transmit(bytes, peer, undefined, (error) =>
        this.#log.warn("sip stateless request not sent", {
          method: request.method,
          to: `${peer.transport}:${peer.address}:${peer.port}`,
          error: describeError(error),
        }),
      );
    } catch (error) {
      this.#log.error("sip stateless request failed", { method: request.method, error });
    }
  }

  /** The UDP socket's receive buffer as the kernel reports it (SO_RCVBUF). */
  get udpReceiveBufferBytes(): number {
    return this.#udp.getRecvBufferSize();
  }

  stats(): EndpointStats {
    return {
      ...this.#counts,
      openConnections: this.#connections.size,
      clientTransactions: this.#table.clientCount,
      serverTransactions: this.#table.serverCount,
    };
  }

  /** Closes the sockets; pending client transactions resolve 503. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#table.close();
    for (const connection of [...this.#connections.values()]) this.#drop(connection);
    await Promise.all([
      new Promise<void>((resolve) => this.#udp.close(() => resolve())),
      new Promise<void>((resolve) => this.#tcp.close(() => resolve())),
    ]);
  }

  // -------------------------------------------------------------------------------------------
  // Sending
  // -------------------------------------------------------------------------------------------

  /**
   * Builds the message as sent: our Via on top, Max-Forwards if missing, and TCP instead of UDP
   * when the datagram would exceed the limit — §18.1.1: "If this causes a change in the transport
   * protocol from the one indicated in the top Via, the value in the top Via MUST be changed."
   */
  #prepare(
    request: SipRequest,
    target: Peer,
    inTransaction: boolean,
  ): { message: SipRequest; bytes: Buffer; peer: Peer } {
    // §9.1: a CANCEL's top Via must equal the INVITE's, so its branch (taken by the TU from a
    // provisional response) is kept; the Via is rebuilt to drop what the far end added to it.
    const given = request.headers.via[0]?.params.branch;
    const cancelBranch =
      inTransaction && request.method.toUpperCase() === "CANCEL" && typeof given === "string"
        ? given
        : undefined;
    const via: Via = {
      version: "2.0",
      protocol: target.transport.toUpperCase(),
      host: this.host,
      port: this.port,
      params: { branch: cancelBranch ?? newBranch(), rport: null },
    };
    const below = cancelBranch ? request.headers.via.slice(1) : request.headers.via;
    const message: SipRequest = {
      ...request,
      headers: {
        ...request.headers,
        via: [via, ...below],
        ...(request.headers["max-forwards"] === undefined ? { "max-forwards": "70" } : {}),
      },
    };
    let bytes = serializeMessage(message);
    let peer = target;
    if (target.transport === "udp" && bytes.length > maxDatagramBytes) {
      peer = { transport: "tcp", address: target.address, port: target.port };
      via.protocol = "TCP";
      bytes = serializeMessage(message);
      this.#log.debug("sip request too large for udp, using tcp", {
        method: request.method,
        bytes: bytes.length,
      });
    }
    return { message, bytes, peer };
  }

  /**
   * Puts bytes on the wire; `onError` runs asynchronously on failure. Returns the TCP connection
   * used, so a transaction keeps sending on the one it started with.
   */
  #transmit(
    data: Buffer,
    peer: Peer,
    pinned: Connection | undefined,
    onError: (error: unknown) => void,
  ): Connection | undefined {
    try {
      if (peer.transport === "udp") {
        this.#udp.send(data, peer.port, peer.address, (error) => {
          if (error) onError(error);
        });
        return undefined;
      }
      const connection = pinned && !pinned.closed ? pinned : this.#connectionFor(peer);
      this.#touch(connection);
      connection.socket.write(data, (error) => {
        if (error) onError(error);
      });
      return connection;
    } catch (error) {
      queueMicrotask(() => onError(error));
      return undefined;
    }
  }

  /** §18.1.1 / RFC 5923 spirit: reuse the named connection, then any open one to address:port. */
  #connectionFor(peer: Peer): Connection {
    const named = peer.connectionId ? this.#connections.get(peer.connectionId) : undefined;
    if (named && !named.closed) return named;
    const existing = this.#byRemote.get(`${peer.address}:${peer.port}`);
    if (existing && !existing.closed) return existing;
    const socket = net.connect({ host: peer.address, port: peer.port, localAddress: this.host });
    return this.#register(socket, peer.address, peer.port);
  }

  #sendResponse(
    response: SipResponse,
    peer: Peer,
    transaction: ServerTransaction,
    pinned: { connection: Connection | undefined },
  ): void {
    const data = serializeMessage(response);
    const onError = (error: unknown): void => {
      this.#log.warn("sip response not sent", {
        status: response.status,
        to: `${peer.transport}:${peer.address}:${peer.port}`,
        error: describeError(error),
      });
      transaction.transportError();
    };
    if (peer.transport === "udp") {
      // §18.2.2 with RFC 3581: back to the source address and port the request came from.
      this.#transmit(data, peer, undefined, onError);
      return;
    }
    // §18.2.2: on the connection the request came on; if it is gone, open one to the Via's
    // "received" address and sent-by port.
    let target = peer;
    if (!this.#connections.has(peer.connectionId ?? "")) {
      const via = response.headers.via[0];
      const received = via?.params.received;
      target = {
        transport: "tcp",
        address: typeof received === "string" ? received : (via?.host ?? peer.address),
        port: via?.port ?? defaultSipPort,
      };
    }
    const connection = this.#transmit(data, target, pinned.connection, onError);
    if (connection && connection !== pinned.connection) {
      if (pinned.connection) this.#detach(pinned.connection, transaction);
      pinned.connection = connection;
      this.#attach(connection, transaction);
    }
  }

  // -------------------------------------------------------------------------------------------
  // TCP connections
  // -------------------------------------------------------------------------------------------

  #adopt(socket: net.Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const connection = this.#register(
      socket,
      socket.remoteAddress ?? "unknown",
      socket.remotePort ?? 0,
    );
    this.#armIdle(connection);
  }

  #register(socket: net.Socket, address: string, port: number): Connection {
    const connection: Connection = {
      id: `tcp-${this.port}-${this.#nextConnection++}`,
      socket,
      framer: new StreamFramer({ maxHeaderBytes, maxBodyBytes: this.#options.maxMessageBytes }),
      address,
      port,
      servers: new Set(),
      clients: new Set(),
      idle: undefined,
      closed: false,
    };
    this.#connections.set(connection.id, connection);
    this.#byRemote.set(`${address}:${port}`, connection);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#guard(() => this.#onStream(connection, chunk)));
    socket.on("error", (error) =>
      this.#log.debug("sip tcp connection error", {
        connection: connection.id,
        error: describeError(error),
      }),
    );
    socket.on("close", () => this.#guard(() => this.#drop(connection)));
    return connection;
  }

  /** Forgets a connection; client transactions waiting on it can no longer get a response. */
  #drop(connection: Connection): void {
    if (connection.closed) return;
    connection.closed = true;
    connection.idle?.cancel();
    connection.socket.destroy();
    this.#connections.delete(connection.id);
    const key = `${connection.address}:${connection.port}`;
    if (this.#byRemote.get(key) === connection) this.#byRemote.delete(key);
    const clients = [...connection.clients];
    connection.clients.clear();
    connection.servers.clear();
    for (const transaction of clients) transaction.transportError();
  }

  #attach(connection: Connection, transaction: ClientTransaction | ServerTransaction): void {
    if (transaction.side === "server") {
      connection.servers.add(transaction);
    } else {
      connection.clients.add(transaction);
    }
    connection.idle?.cancel();
    connection.idle = undefined;
  }

  #detach(connection: Connection, transaction: ClientTransaction | ServerTransaction): void {
    if (transaction.side === "server") {
      connection.servers.delete(transaction);
    } else {
      connection.clients.delete(transaction);
    }
    this.#armIdle(connection);
  }

  #busy(connection: Connection): boolean {
    return connection.clients.size > 0 || connection.servers.size > 0;
  }

  /** Traffic on a connection with no transaction restarts its idle countdown (keep-alives count). */
  #touch(connection: Connection): void {
    if (!this.#busy(connection)) this.#armIdle(connection);
  }

  #armIdle(connection: Connection): void {
    connection.idle?.cancel();
    connection.idle = undefined;
    if (connection.closed || this.#busy(connection)) return;
    connection.idle = this.#clock.set(this.#idleMs, () => {
      connection.idle = undefined;
      if (this.#busy(connection)) return;
      this.#log.debug("sip tcp connection idle, closing", { connection: connection.id });
      this.#drop(connection);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Receiving
  // -------------------------------------------------------------------------------------------

  /** No socket handler may throw: one bad peer must not stop service for the others. */
  #guard(work: () => void): void {
    try {
      work();
    } catch (error) {
      this.#log.error("sip endpoint handler failed", { error });
    }
  }

  #onDatagram(data: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.#closed) return;
    this.#counts.udpIn++;
    // RFC 5626 §4.4.1 keep-alives (CRLF) carry no message.
    if (data.every((byte) => byte === 0x0d || byte === 0x0a)) return;
    const peer: Peer = { transport: "udp", address: rinfo.address, port: rinfo.port };
    const message = this.#parse(data, peer, undefined);
    if (message) this.#dispatch(message, data, peer, undefined);
  }

  #onStream(connection: Connection, chunk: Buffer): void {
    if (this.#closed || connection.closed) return;
    this.#touch(connection);
    const peer: Peer = {
      transport: "tcp",
      address: connection.address,
      port: connection.port,
      connectionId: connection.id,
    };
    for (const framed of connection.framer.push(chunk)) {
      if (connection.closed) return;
      switch (framed.kind) {
        case "message": {
          this.#counts.tcpIn++;
          const message = this.#parse(framed.data, peer, connection);
          if (message) this.#dispatch(message, framed.data, peer, connection);
          break;
        }
        case "too-large":
          this.#counts.tcpIn++;
          this.#onTooLargeHead(framed.head, peer, connection);
          break;
        case "garbage":
          this.#counts.badRequests++;
          this.#log.warn("sip tcp stream unreadable, closing connection", {
            connection: connection.id,
            peer: `${peer.address}:${peer.port}`,
            reason: framed.reason,
          });
          this.#drop(connection);
          return;
      }
    }
  }

  /** Parses one message; a request with a readable head but a bad rest gets a 400 naming why. */
  #parse(data: Buffer, peer: Peer, connection: Connection | undefined): SipMessage | undefined {
    try {
      return parseMessage(data);
    } catch (error) {
      this.#counts.badRequests++;
      const reason = error instanceof SipParseError ? error.reason : describeError(error);
      this.#log.debug("sip message unparseable", {
        peer: `${peer.transport}:${peer.address}:${peer.port}`,
        reason,
      });
      const partial = error instanceof SipParseError ? error.partial : undefined;
      if (partial && partial.method.toUpperCase() !== "ACK") {
        this.#sendStateless(localResponse(partial, 400, reason), peer, connection);
      }
      return undefined;
    }
  }

  /** The framer stopped at a body over the limit: 413 from what the head says. */
  #onTooLargeHead(head: Buffer, peer: Peer, connection: Connection): void {
    this.#counts.tooLarge++;
    let request: SipRequest | undefined;
    try {
      const parsed = parseMessage(head);
      if (parsed.kind === "request") request = parsed;
    } catch (error) {
      if (error instanceof SipParseError) request = error.partial;
    }
    this.#log.warn("sip message body over the limit", {
      peer: `${peer.address}:${peer.port}`,
      limit: this.#options.maxMessageBytes,
    });
    if (request && request.method.toUpperCase() !== "ACK") {
      this.#sendStateless(localResponse(request, 413), peer, connection);
    }
  }

  /** A response outside any transaction (400/413 before one exists). */
  #sendStateless(response: SipResponse, peer: Peer, connection: Connection | undefined): void {
    const data = serializeMessage(response);
    this.#transmit(data, peer, connection, (error) =>
      this.#log.debug("sip stateless response not sent", {
        status: response.status,
        error: describeError(error),
      }),
    );
  }

  #dispatch(
    message: SipMessage,
    data: Buffer,
    peer: Peer,
    connection: Connection | undefined,
  ): void {
    if (message.kind === "response") {
      const transaction = this.#table.findClient(message);
      if (transaction) transaction.receive(message);
      else {
        this.#counts.strayResponses++;
        this.#log.debug("sip response matches no transaction, dropped", {
          status: message.status,
          callId: message.headers["call-id"],
        });
      }
      return;
    }
    this.#onIncomingRequest(message, data, peer, connection);
  }

  /** `data`: the request's bytes as received, for its span. */
  #onIncomingRequest(
    request: SipRequest,
    data: Buffer,
    peer: Peer,
    connection: Connection | undefined,
  ): void {
    const via = request.headers.via[0];
    if (!via) {
      this.#counts.badRequests++;
      return;
    }
    // §18.2.1 and RFC 3581 §4: record where the request really came from, so responses and
    // logs see the source; "rport" gets the source port.
    if (via.host !== peer.address || "rport" in via.params) via.params.received = peer.address;
    if ("rport" in via.params) via.params.rport = String(peer.port);

    const method = request.method.toUpperCase();
    const existing = this.#table.findServer(request);
    if (existing) {
      if (existing.receive(request) === "to-tu") this.#deliverAck(request, peer);
      return;
    }
    if (method === "ACK") {
      this.#deliverAck(request, peer);
      return;
    }

    const pinned = { connection };
    const transaction = this.#table.createServer(request, peer.transport === "tcp", {
      send: (response) => this.#sendResponse(response, peer, transaction, pinned),
      failed: (reason) =>
        this.#log.info("sip server transaction failed", {
          method: request.method,
          callId: request.headers["call-id"],
          reason,
        }),
      terminated: () => {
        if (pinned.connection) this.#detach(pinned.connection, transaction);
      },
    });
    if (connection) this.#attach(connection, transaction);

    if (request.body.length > this.#options.maxMessageBytes) {
      this.#counts.tooLarge++;
      transaction.respond(localResponse(request, 413));
      return;
    }
    if (method === "CANCEL") {
      this.#onCancel(request, transaction);
      return;
    }
    // Dropped once ended: the transaction's callbacks keep this scope up to 32 s (Timer J).
    let span = sipTransaction("server", method, () => [this.#options.spanAttributes?.()]);
    span?.describe(request, peer, data);
    const incoming: IncomingRequest = {
      request,
      peer,
      respond: (response) => {
        if (response.status >= 200) {
          span?.end(response.status);
          span = undefined;
        }
        if (!transaction.respond(response)) {
          this.#log.debug("sip response discarded by its transaction", {
            status: response.status,
            state: transaction.state,
          });
        }
      },
    };
    try {
      // Everything the handler starts, async continuations included, runs in this span.
      if (span) span.run(() => this.#onRequest(incoming));
      else this.#onRequest(incoming);
    } catch (error) {
      this.#log.error("sip request handler threw", { method: request.method, error });
      if (!transaction.finalResponse) {
        span?.end(500);
        transaction.respond(localResponse(request, 500, undefined, transaction.lastResponse));
      }
    }
  }

  /**
   * RFC 3261 §9.2: 481 when no transaction matches; otherwise 200 for the CANCEL, and 487 on the
   * INVITE if it has no final response yet (the TU's later response is then discarded).
   */
  #onCancel(cancel: SipRequest, transaction: ServerTransaction): void {
    const target = this.#table.findCancelTarget(cancel);
    if (!target) {
      transaction.respond(localResponse(cancel, 481));
      return;
    }
    // §9.2: the To tags of the CANCEL's 200 and of the INVITE's response "SHOULD be the same".
    const ok = localResponse(cancel, 200, undefined, target.lastResponse);
    transaction.respond(ok);
    if (!target.finalResponse) target.respond(localResponse(target.request, 487, undefined, ok));
  }

  /** ACK for a 2xx is its own transaction (§17): the TU gets it, with nothing to respond. */
  #deliverAck(request: SipRequest, peer: Peer): void {
    const incoming: IncomingRequest = {
      request,
      peer,
      respond: () => this.#log.debug("sip response to an ACK ignored"),
    };
    try {
      this.#onRequest(incoming);
    } catch (error) {
      this.#log.error("sip request handler threw on ACK", { error });
    }
  }
}

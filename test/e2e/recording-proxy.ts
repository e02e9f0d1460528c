import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { brotliDecompressSync, constants, gunzipSync, inflateSync } from "node:zlib";

/** At most this much of each body is kept: enough for every JSON answer, manifests and the tests' small layers. */
const KEPT_BODY_BYTES = 4 * 1024 * 1024;

/** A request a client made through the proxy and the registry's answer, as they went over the wire. */
export interface Exchange {
  method: string;
  /** Path and query, as sent. */
  path: string;
  requestHeaders: Record<string, string>;
  requestBody: Buffer;
  status: number;
  /** The response's header lines, `Name: value`, as the registry sent them. */
  responseHeaders: string[];
  /** The body as it went over the wire: compressed when the client accepted it so (see `decodedBody`). */
  responseBody: Buffer;
}

/** A response header's value, or undefined. */
export function responseHeader(exchange: Exchange, name: string): string | undefined {
  const prefix = `${name.toLowerCase()}: `;
  return exchange.responseHeaders.find((line) => line.toLowerCase().startsWith(prefix))?.slice(prefix.length);
}

/** The response body with its Content-Encoding undone (workerd compresses for clients that accept it). */
export function decodedBody(exchange: Exchange): Buffer {
  const body = exchange.responseBody;
  // A kept body may be cut short: decode what there is.
  switch (responseHeader(exchange, "Content-Encoding")?.trim().toLowerCase()) {
    case "gzip":
      return gunzipSync(body, { finishFlush: constants.Z_SYNC_FLUSH });
    case "deflate":
      return inflateSync(body, { finishFlush: constants.Z_SYNC_FLUSH });
    case "br":
      return brotliDecompressSync(body, { finishFlush: constants.BROTLI_OPERATION_FLUSH });
    default:
      return body;
  }
}

/**
 * A plain HTTP proxy in front of the registry that keeps every exchange, so a test can say what a
 * client asked and what the registry answered (and that no answer carries a secret). It forwards
 * the Host header as the client sent it, so the registry's challenges name the proxy's address
 * and every later request, /token included, comes back through it.
 */
export class RecordingProxy {
  private constructor(
    private readonly server: ReturnType<typeof createServer>,
    private readonly agent: Agent,
    /** host:port of the proxy, as image references spell it. */
    readonly address: string,
    /** Every exchange so far, in the order the requests arrived. */
    readonly exchanges: readonly Exchange[],
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards to `target` (host:port). */
  static async start(target: string): Promise<RecordingProxy> {
    const upstream = new URL(`http://${target}`);
    const agent = new Agent({ keepAlive: true });
    const exchanges: Exchange[] = [];
    const server = createServer((req, res) => forward(req, res, upstream, agent, exchanges));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return new RecordingProxy(server, agent, `127.0.0.1:${(server.address() as AddressInfo).port}`, exchanges);
  }

  /** The exchanges whose path (without the query) matches. */
  to(method: string, path: RegExp): Exchange[] {
    return this.exchanges.filter((exchange) => exchange.method === method && path.test(exchange.path.split("?")[0]!));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }
}

function forward(req: IncomingMessage, res: ServerResponse, upstream: URL, agent: Agent, exchanges: Exchange[]): void {
  const requestBody = new Keeper();
  const exchange: Exchange = {
    method: req.method ?? "GET",
    path: req.url ?? "/",
    requestHeaders: Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, [value ?? ""].flat().join(", ")])),
    requestBody: Buffer.alloc(0),
    status: 0,
    responseHeaders: [],
    responseBody: Buffer.alloc(0),
  };
  exchanges.push(exchange);
  const outgoing = request({
    host: upstream.hostname,
    port: upstream.port,
    method: req.method,
    path: req.url,
    headers: req.rawHeaders,
    agent,
  });
  outgoing.on("response", (incoming) => {
    const responseBody = new Keeper();
    exchange.status = incoming.statusCode ?? 0;
    exchange.responseHeaders = pairs(incoming.rawHeaders).map(([name, value]) => `${name}: ${value}`);
    res.writeHead(exchange.status, incoming.statusMessage, incoming.rawHeaders);
    incoming.on("data", (chunk: Buffer) => {
      responseBody.add(chunk);
      res.write(chunk);
    });
    incoming.on("end", () => {
      exchange.responseBody = responseBody.bytes();
      res.end();
    });
    incoming.on("error", () => res.destroy());
  });
  outgoing.on("error", (error) => {
    exchange.status = 502;
    if (!res.headersSent) res.writeHead(502, { "Content-Type": "text/plain" });
    res.end(`recording proxy: ${error.message}`);
  });
  req.on("data", (chunk: Buffer) => requestBody.add(chunk));
  req.on("end", () => (exchange.requestBody = requestBody.bytes()));
  // A client that goes away takes its request to the registry with it.
  res.on("close", () => {
    if (!res.writableFinished) outgoing.destroy();
  });
  req.pipe(outgoing);
}

/** [name, value] pairs from Node's flat raw header list, order and case kept. */
function pairs(raw: string[]): [string, string][] {
  const result: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) result.push([raw[i]!, raw[i + 1]!]);
  return result;
}

/** Keeps the first KEPT_BODY_BYTES of a body. */
class Keeper {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  add(chunk: Buffer): void {
    if (this.size >= KEPT_BODY_BYTES) return;
    const kept = chunk.subarray(0, KEPT_BODY_BYTES - this.size);
    this.chunks.push(kept);
    this.size += kept.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * The secrets found in any response the proxy passed on, in its headers or body (decompressed),
 * as themselves, base64-encoded (as a Basic credential echoed back would be) or URL-encoded.
 * `secrets` maps a description to the secret; each finding names the exchange and the description.
 */
export function leakedSecrets(exchanges: readonly Exchange[], secrets: ReadonlyMap<string, string>): string[] {
  const findings: string[] = [];
  for (const exchange of exchanges) {
    const text = `${exchange.responseHeaders.join("\n")}\n\n${decodedBody(exchange).toString("latin1")}`;
    for (const [description, secret] of secrets) {
      const forms = [secret, Buffer.from(secret).toString("base64").replace(/=+$/, ""), encodeURIComponent(secret)];
      if (forms.some((form) => text.includes(form))) findings.push(`${exchange.method} ${exchange.path} → ${exchange.status} carries ${description}`);
    }
  }
  return findings;
}

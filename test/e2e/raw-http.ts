import { connect } from "node:net";

/** A response as it came off the socket. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** `HOST:PORT` or `http://HOST:PORT`. */
function hostAndPort(address: string): { host: string; port: number } {
  const url = new URL(address.includes("://") ? address : `http://${address}`);
  return { host: url.hostname, port: Number(url.port) };
}

/**
 * Sends `request` byte for byte over a new connection, as a client whose body
 * is cut short or malformed would, then half-closes it (the client sends no
 * more) and reads the answer until the server closes or `timeoutMs` passes.
 */
export function sendRaw(address: string, request: string | Uint8Array, timeoutMs = 10_000): Promise<RawResponse> {
  const { host, port } = hostAndPort(address);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const received: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on("connect", () => socket.end(request));
    socket.on("data", (chunk) => {
      received.push(chunk);
      const parsed = parse(Buffer.concat(received));
      if (parsed) {
        clearTimeout(timer);
        socket.destroy();
        resolve(parsed);
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const parsed = parse(Buffer.concat(received), true);
      if (parsed) resolve(parsed);
      else reject(new Error(`the connection closed after ${Buffer.concat(received).length} bytes without a complete answer`));
    });
  });
}

/** The response once its head and its Content-Length of body (or, when `closed`, all there was) have arrived. */
function parse(bytes: Buffer, closed = false): RawResponse | null {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine = "", ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = bytes.subarray(end + 4);
  const length = Number(headers["content-length"] ?? (closed ? body.length : NaN));
  if (Number.isNaN(length) || body.length < length) return null;
  return { status: Number(statusLine.split(" ")[1]), headers, body: body.subarray(0, length).toString("utf8") };
}

/**
 * A DevTools protocol session with the worker's isolate through wrangler's
 * inspector proxy, which takes one client at a time, and only one that says
 * it comes from localhost.
 */
export async function openDevTools(url) {
  const socket = new WebSocket(url, { headers: { Origin: "http://localhost" } });
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`no DevTools connection at ${url}`));
  });
  const pending = new Map();
  let nextId = 1;
  // Events (a heap snapshot's chunks among them) answer no call and are dropped.
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    const call = pending.get(message.id);
    if (!call) return;
    pending.delete(message.id);
    if (message.error) call.reject(new Error(`DevTools ${call.method}: ${message.error.message}`));
    else call.resolve(message.result);
  };
  socket.onclose = () => {
    for (const call of pending.values()) call.reject(new Error(`DevTools connection closed during ${call.method}`));
    pending.clear();
  };
  return {
    /** Sends a command; resolves with its result. */
    call(method, params = {}) {
      return new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { method, resolve, reject });
        socket.send(JSON.stringify({ id, method, params }));
      });
    },
    close: () => socket.close(),
  };
}
